"""bench/vljepa_robustness.py: the side-by-side table, and one quick end-to-end run on a tiny model."""

from __future__ import annotations

import pytest

from bench.vljepa_robustness import main, robustness_table

pytest_plugins = ["test_vljepa_kit"]  # tiny_model, one_torch_thread


def test_robustness_table_lists_sets_categories_and_models():
    results = {
        "vl-jepa": {
            "easyvqa": {"vqa_accuracy": 0.97, "yes_no_answered_yes_no": 1.0},
            "easyvqa-reworded": {
                "vqa_accuracy": 0.5,
                "yes_no_answered_yes_no": 0.75,
                "vqa_accuracy_by_category": {"negation": 0.25, "polite": 0.8},
                "yes_no_answered_yes_no_by_category": {"negation": 0.5},
            },
            "easyvqa-unseen-constructions": {"vqa_accuracy": 0.6, "vqa_accuracy_by_category": {"ellipsis": 0.7}},
        },
        "dual": {"easyvqa": {"vqa_accuracy": 0.9, "yes_no_answered_yes_no": None}},
    }
    table = robustness_table(results).splitlines()
    assert table[0] == "| (%) | vl-jepa | dual |"
    assert "| easy-VQA test: accuracy | 97.00 | 90.00 |" in table
    assert "| easy-VQA test: yes/no answered yes/no | 100.00 | — |" in table
    assert "| reworded, negation: accuracy | 25.00 | — |" in table
    assert "| reworded, negation: yes/no answered yes/no | 50.00 | — |" in table
    assert "| easyvqa-unseen-constructions: accuracy | 60.00 | — |" in table
    assert "| unseen construction, ellipsis: accuracy | 70.00 | — |" in table
    assert not any("polite: yes/no" in line for line in table)  # no value anywhere: no row
    assert not any("scenes" in line for line in table)


@pytest.mark.bundled
@pytest.mark.usefixtures("one_torch_thread")
def test_bench_runs_end_to_end_on_a_tiny_model(tmp_path, tiny_model, monkeypatch):
    monkeypatch.setenv("JEPA_CACHE_DIR", str(tmp_path / "cache"))
    tiny_model.save_pretrained(tmp_path / "model")
    argv = [str(tmp_path / "model"), "--names", "tiny", "--output_dir", str(tmp_path / "out"),
            "--max_samples", "8", "--retrieval", "--scenes_images", "5"]  # fmt: skip
    report = main(argv).read_text()
    for label in ("easy-VQA test: accuracy", "easyvqa-reworded: accuracy", "easyvqa-unseen-constructions: accuracy",
                  "scenes-reworded: i2t_r1"):
        assert f"| {label} |" in report
    assert (tmp_path / "out" / "tiny" / "easyvqa-reworded" / "predictions.jsonl").is_file()
    assert main(argv).read_text() == report  # reused, not re-evaluated
