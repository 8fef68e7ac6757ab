"""``python -m precursor_screen.declarations``: the two commands, also before the main CLI lists them."""

import click

from precursor_screen.declarations.commands import declarations_cmd, rescreen_cmd


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Trade-declaration screening: `declarations` and `rescreen`."""


main.add_command(declarations_cmd, "declarations")
main.add_command(rescreen_cmd, "rescreen")

if __name__ == "__main__":
    main(prog_name="precursor-screen")
