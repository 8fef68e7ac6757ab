"""Detection quality on the evaluation sets must stay at the bar (not a timing test).

Recall: flag other than `none` on real designer precursors; false alarms: any flag on legitimate
chemicals. The same figures are in the README (evaluation/evaluate.py prints them).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def results() -> dict:
    spec = importlib.util.spec_from_file_location("evaluate", ROOT / "evaluation" / "evaluate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module.evaluate(jobs=2)


def _rate(pair: tuple[int, int]) -> float:
    return pair[0] / pair[1]


@pytest.mark.parametrize("label", ["built-in", "as of 2012-12-31"])
def test_recall_and_false_alarms_meet_the_bar(results: dict, label: str) -> None:
    r = results["modes"][label]
    assert _rate(r["recall"]) >= 0.90, r["missed"]
    assert _rate(r["false_alarms"]) <= 0.02, r["false_alarm_rows"]


def test_better_than_plain_tanimoto(results: dict) -> None:
    r = results["modes"]["as of 2012-12-31"]
    recall, false_alarms = _rate(r["recall"]), _rate(r["false_alarms"])
    for threshold, (base_recall, base_false_alarms) in r["baseline"].items():
        assert recall > base_recall or false_alarms < base_false_alarms, threshold


def test_time_split_catches_most_later_listings(results: dict) -> None:
    assert _rate(results["modes"]["as of 2012-12-31"]["later_scheduled"]) >= 0.9
