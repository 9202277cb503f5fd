"""The side-by-side comparison report."""

from __future__ import annotations

import pytest

from eval.report import collect_metrics, flatten_metrics, write_comparison_report
from eval.runners import run_vqa
from eval.testing import ColourModel, colour_vqa_dataset

VLJEPA = {
    "vqa": {"vqa_accuracy": 0.5, "vqa_accuracy_by_type": {"what color": 0.4, "how many": 0.6}},
    "retrieval": {
        "i2t_r1": 0.25,
        "i2t_r5": 0.5,
        "i2t_r10": 0.75,
        "t2i_r1": 0.2,
        "t2i_r5": 0.4,
        "t2i_r10": 0.6,
    },
}
BASELINE = {  # flat form, no retrieval R@10, with zero-shot accuracy
    "vqa_accuracy": 0.625,
    "vqa_accuracy_by_type": {"what color": 0.7},
    "i2t_r1": 0.3, "i2t_r5": 0.45, "t2i_r1": 0.1, "t2i_r5": 0.4,
    "top1": 0.9, "top5": 1.0,
}  # fmt: skip


def table_rows(text: str) -> dict[str, list[str]]:
    rows = {}
    for line in text.splitlines():
        if (
            line.startswith("| ")
            and not line.startswith("| metric")
            and not line.startswith("| question type")
        ):
            cells = [cell.strip() for cell in line.strip("|").split("|")]
            rows[cells[0]] = cells[1:]
    return rows


def test_models_side_by_side_with_the_best_in_bold(tmp_path):
    path = write_comparison_report({"VL-JEPA": VLJEPA, "dual encoder": BASELINE}, tmp_path / "compare.md")
    text = path.read_text()
    assert "| metric | VL-JEPA | dual encoder |" in text
    rows = table_rows(text)
    assert rows["VQA accuracy (%)"] == ["50.00", "**62.50**"]
    assert rows["image -> text R@1 (%)"] == ["25.00", "**30.00**"]
    assert rows["image -> text R@5 (%)"] == ["**50.00**", "45.00"]
    assert rows["image -> text R@10 (%)"] == ["75.00", "—"]
    assert rows["text -> image R@5 (%)"] == ["**40.00**", "**40.00**"]  # a tie: both best
    assert rows["zero-shot top-1 (%)"] == ["—", "90.00"]
    assert "CIDEr-D" not in text  # no model has it
    assert "## VQA accuracy per question type (%)" in text
    assert rows["what color"] == ["40.00", "**70.00**"]
    assert rows["how many"] == ["60.00", "—"]


def test_flatten_metrics_merges_task_sections():
    assert flatten_metrics(VLJEPA)["i2t_r10"] == 0.75
    assert flatten_metrics(BASELINE) == BASELINE


def test_empty_results_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="at least one model"):
        write_comparison_report({}, tmp_path / "x.md")


def test_collect_metrics_reads_runner_outputs(tmp_path):
    run_vqa(ColourModel(), colour_vqa_dataset(4), output_dir=tmp_path / "colour" / "vqa")
    results = collect_metrics({"colour": tmp_path / "colour"})
    assert set(results["colour"]) == {"vqa"}
    text = write_comparison_report(results, tmp_path / "compare.md").read_text()
    assert f"{results['colour']['vqa']['vqa_accuracy'] * 100:.2f}" in text
    with pytest.raises(FileNotFoundError, match="no <task>/metrics.json"):
        collect_metrics({"missing": tmp_path / "nothing"})
