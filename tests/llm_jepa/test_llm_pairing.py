"""llm_jepa/pairing.py: per-example pairing of the two arms by example id, the two scorings, loss curves."""

from __future__ import annotations

import json

import pytest

from llm_jepa.pairing import example_outcome, example_statistics, paired_records, training_curve


def rec(example_id, semantic, strict=0.0, task="regex"):
    field = {"regex": "semantic_equivalence", "gsm8k": "answer_match", "sql": "execution_match"}.get(task)
    record = {"id": example_id, "task": task, "exact_match": strict}
    if field:
        record[field] = semantic
    return record


@pytest.mark.parametrize(
    ("record", "semantic", "strict"),
    [
        (rec("a", 1.0, 0.0), 1.0, 0.0),
        (rec("b", 0.0, 0.0, task="gsm8k"), 0.0, 0.0),
        (rec("c", 1.0, 1.0, task="sql"), 1.0, 1.0),
        ({"id": "d", "task": "generic", "exact_match": 1.0}, 1.0, 1.0),  # no semantic field: exact match
    ],
)
def test_two_scorings_per_record(record, semantic, strict):
    assert example_outcome(record, "semantic") == semantic and example_outcome(record, "strict") == strict


def test_pairs_by_id_not_by_position():
    base = [rec("x", 1.0), rec("y", 0.0)]
    treat = [rec("y", 1.0), rec("x", 1.0)]  # another order: still paired by id
    ids, aligned = paired_records([base], [treat], [7])
    assert ids == ["x", "y"] and [r["id"] for r in aligned[0][1]] == ["x", "y"]
    stats = example_statistics([base], [treat], [7], num_resamples=200)
    assert stats["semantic"]["treatment_only"] == 1 and stats["semantic"]["baseline_only"] == 0


@pytest.mark.parametrize(
    ("baseline", "treatment", "message"),
    [
        ([[rec("x", 1)]], [[rec("z", 1)]], r"seed 1: the baseline and LLM-JEPA .*only in the first: \['x'\]"),
        ([[rec("x", 1), rec("x", 0)]], [[rec("x", 1)]], "appears twice"),
        ([[rec("x", 1)], [rec("y", 1)]], [[rec("x", 1)], [rec("y", 1)]], "seed 2 scored other examples"),
    ],
)
def test_unpairable_predictions_are_refused(baseline, treatment, message):
    with pytest.raises(ValueError, match=message):
        paired_records(baseline, treatment, [1, 2][: len(baseline)])


def test_training_curve_from_trainer_state(tmp_path):
    assert training_curve(tmp_path) is None
    history = [{"step": 2, "loss": 1.0, "lm_loss": 0.9}, {"step": 4, "lm_loss": 0.5}, {"train_runtime": 3.0}]
    (tmp_path / "trainer_state.json").write_text(json.dumps({"log_history": history}))
    assert training_curve(tmp_path) == ([2, 4], [0.9, 0.5])
    assert training_curve(tmp_path, key="eval_lm_loss") is None
