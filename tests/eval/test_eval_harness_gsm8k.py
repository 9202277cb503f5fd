"""GSM8K scored with lm-evaluation-harness's rules (``eval.harness_gsm8k``, ``llm-jepa eval --lm_eval_gsm8k``).

Expected values follow the harness's gsm8k task (lm_eval/tasks/gsm8k/gsm8k.yaml): ``strict-match`` takes the
first ``#### <digits . ,>``; ``flexible-extract`` the last ``-?[$0-9.,]{2,}`` or ``-?[0-9]+``; exact match after
removing ``,``, ``$``, everything up to ``#### `` and one final ``.``.
"""

from __future__ import annotations

import sys

import pytest

from eval.llm_tasks import gsm8k_answer_match
from jepa_core.extras import MissingExtraError

STRICT, FLEXIBLE = "lm_eval:exact_match,strict-match", "lm_eval:exact_match,flexible-extract"

# (prediction, gold solution, strict-match answer, strict score, flexible-extract answer, flexible score)
CASES = [
    ("6 + 2 = 8, doubled\n#### 16", "6 + 2 = 8 and 8 * 2 = 16\n#### 16", "16", 1.0, "16", 1.0),
    ("the answer is 1,234.", "#### 1234", "[invalid]", 0.0, "1,234.", 1.0),  # no marker: only flexible finds it
    ("#### $1,200", "#### 1200", "[invalid]", 0.0, "$1,200", 1.0),  # '$' after '#### ' defeats the strict regex
    ("#### 1,234", "#### 1234", "1,234", 1.0, "1,234", 1.0),  # ',' is ignored when matching
    ("#### 72.00", "#### 72", "72.00", 0.0, "72.00", 0.0),  # no numeric normalisation: '72.00' != '72'
    ("#### -5", "#### -5", "-5", 1.0, "-5", 1.0),
    ("3 apples, then 5 more: 8", "#### 8", "[invalid]", 0.0, "8", 1.0),  # flexible: the last number
    ("it is 42\n#### 41", "#### 42", "41", 0.0, "41", 0.0),
    ("no number at all", "#### 3", "[invalid]", 0.0, "[invalid]", 0.0),
]


@pytest.fixture(scope="module")
def harness():
    pytest.importorskip("lm_eval")
    from eval import harness_gsm8k

    return harness_gsm8k


def test_rules_are_read_from_the_installed_task_file(harness):
    rules = harness.load_harness_rules()
    assert rules.source.name == "gsm8k.yaml" and rules.source.is_file()
    assert [name for name, _ in rules.filters] == ["strict-match", "flexible-extract"]
    assert [step[0] for _, steps in rules.filters for step in steps] == ["regex", "take_first"] * 2
    assert rules.metrics[0][0] == "exact_match" and rules.metrics[0][1]["ignore_case"] is True
    assert rules.score_names() == [STRICT, FLEXIBLE]


def test_hand_written_predictions_score_as_the_harness_documents(harness):
    predictions, golds = [c[0] for c in CASES], [c[1] for c in CASES]
    scores = harness.harness_scores(predictions, golds)
    for case, score in zip(CASES, scores):
        _, _, strict_answer, strict, flexible_answer, flexible = case
        assert score[harness.ANSWERS_KEY] == {"strict-match": strict_answer, "flexible-extract": flexible_answer}, case
        assert (score[STRICT], score[FLEXIBLE]) == (strict, flexible), case


def test_the_builtin_scorer_differs_where_documented():
    # ours normalises numbers but needs a marked answer; the harness's flexible-extract takes any last number
    assert gsm8k_answer_match("#### 72.00", "#### 72") and gsm8k_answer_match("#### $1,200", "#### 1200")
    assert not gsm8k_answer_match("the answer is 1,234.", "#### 1234")


def test_llm_eval_reports_the_harness_scores_beside_its_own(harness):
    from llm_jepa.data.registry import rows_to_dataset
    from llm_jepa.evaluate import add_harness_scores, aggregate_metrics, is_score, score_example

    rows = [
        {"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": gold}],
         "id": f"g{i}", "task": "gsm8k", "reference": gold.split("#### ")[-1], "db_path": ""}
        for i, gold in enumerate(["2 + 3 = 5\n#### 5", "#### 1234", "#### 72"])
    ] + [{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hi"}],
          "id": "x", "task": "generic", "reference": "hi", "db_path": ""}]
    predictions = ["so 5\n#### 5", "the answer is 1,234.", "#### 72.00", "hi"]
    records = [score_example(row, p) for row, p in zip(rows, predictions)]
    add_harness_scores(records, rows_to_dataset(rows))
    assert [r.get(STRICT) for r in records] == [1.0, 0.0, 0.0, None]
    assert [r.get(FLEXIBLE) for r in records] == [1.0, 1.0, 0.0, None]
    metrics = aggregate_metrics(records)
    assert metrics[f"gsm8k/{STRICT}"] == pytest.approx(1 / 3)
    assert metrics[f"gsm8k/{FLEXIBLE}"] == pytest.approx(2 / 3)
    assert metrics["gsm8k/answer_match"] == pytest.approx(2 / 3)  # the built-in score stays
    assert is_score(f"gsm8k/{STRICT}") and not any(STRICT in key for key in metrics if key.startswith("generic/"))


def test_without_lm_eval_the_error_names_the_extra(monkeypatch, tmp_path):
    from eval.harness_gsm8k import load_harness_rules
    from llm_jepa.evaluate import main

    monkeypatch.setitem(sys.modules, "lm_eval", None)  # an import of it now raises ImportError
    with pytest.raises(MissingExtraError, match=r"pip install 'jepa-hf\[lm-eval\]'"):
        load_harness_rules()
    # the CLI fails before it loads a model (this one does not exist)
    with pytest.raises(MissingExtraError, match=r"--lm_eval_gsm8k"):
        main(["--model", str(tmp_path / "no-model"), "--output_dir", str(tmp_path / "out"), "--lm_eval_gsm8k", "true"])
