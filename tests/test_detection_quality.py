"""Detection quality on the evaluation sets must stay at the issue's bar (not a timing test).

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


@pytest.mark.parametrize("label", ["built-in", "as of 2012-12-31"])
def test_recall_and_false_alarms_meet_the_bar(results: dict, label: str) -> None:
    r = results["lists"][label]
    assert r["recall"] >= 0.90, r["missed"]
    assert r["false_alarm_rate"] <= 0.02, r["false_alarms"]


def test_better_than_plain_tanimoto(results: dict) -> None:
    r = results["lists"]["as of 2012-12-31"]
    for threshold, (recall, false_alarms) in r["baseline"].items():
        assert r["recall"] > recall or r["false_alarm_rate"] < false_alarms, threshold


def test_time_split_catches_most_later_listings(results: dict) -> None:
    hit, n = results["lists"]["as of 2012-12-31"]["later_scheduled"]
    assert hit / n >= 0.9
