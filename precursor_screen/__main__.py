from precursor_screen.cli import main

main()
