"""Side-by-side Markdown comparison of evaluated models (e.g. VL-JEPA vs the dual-encoder baseline).

``results`` maps a model name to its metrics: either one flat dict (the runners' outputs merged) or a
dict keyed by task name (``"retrieval"``, ``"vqa"``, ``"zeroshot"``, ``"captioning"``) holding each
runner's output. :func:`collect_metrics` builds the latter from evaluation output folders.

Example::

    write_comparison_report(
        {"VL-JEPA": {"vqa": vqa_metrics, "retrieval": retrieval_metrics},
         "dual encoder": {"vqa": base_vqa, "retrieval": base_retrieval}},
        "runs/compare/report.md",
    )
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from eval.artifacts import METRICS_FILE, markdown_table
from jepa_core.rundir import atomic_write_text

TASKS = ("retrieval", "vqa", "zeroshot", "captioning")

# (metric key, row label, is a fraction shown as a percentage)
MAIN_ROWS: tuple[tuple[str, str, bool], ...] = (
    ("vqa_accuracy", "VQA accuracy (%)", True),
    ("i2t_r1", "image -> text R@1 (%)", True),
    ("i2t_r5", "image -> text R@5 (%)", True),
    ("i2t_r10", "image -> text R@10 (%)", True),
    ("t2i_r1", "text -> image R@1 (%)", True),
    ("t2i_r5", "text -> image R@5 (%)", True),
    ("t2i_r10", "text -> image R@10 (%)", True),
)
OPTIONAL_ROWS: tuple[tuple[str, str, bool], ...] = (
    ("top1", "zero-shot top-1 (%)", True),
    ("top5", "zero-shot top-5 (%)", True),
    ("cider", "CIDEr-D", False),
    ("bleu4", "BLEU-4 (%)", True),
)
MISSING = "—"


def flatten_metrics(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """Merge per-task dicts (keys in :data:`TASKS`) into one flat dict; flat dicts pass through."""
    flat: dict[str, Any] = {}
    for key, value in metrics.items():
        if key in TASKS and isinstance(value, Mapping):
            flat.update(value)
        else:
            flat[key] = value
    return flat


def _row(label: str, values: list[Any], percent: bool) -> list[str]:
    numbers = [value for value in values if isinstance(value, (int, float)) and not isinstance(value, bool)]
    best = max(numbers) if len(numbers) > 1 else None
    cells = []
    for value in values:
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            cells.append(MISSING)
            continue
        text = f"{value * 100:.2f}" if percent else f"{value:.4f}"
        cells.append(f"**{text}**" if best is not None and value == best else text)
    return [label, *cells]


def write_comparison_report(results: dict[str, dict], path: str | Path) -> Path:
    """Write a Markdown table with one column per model; the best value of each row is in bold.

    Rows: VQA accuracy, retrieval R@1/5/10 both ways (always, ``—`` where a model lacks them), then
    zero-shot top-1/top-5, CIDEr-D and BLEU-4 when any model has them, and a per-question-type VQA
    table when any model has ``vqa_accuracy_by_type``.
    """
    if not results:
        raise ValueError("results is empty: give at least one model's metrics")
    models = list(results)
    flat = {name: flatten_metrics(metrics) for name, metrics in results.items()}
    rows = [_row(label, [flat[m].get(key) for m in models], percent) for key, label, percent in MAIN_ROWS]
    rows += [
        _row(label, [flat[m].get(key) for m in models], percent)
        for key, label, percent in OPTIONAL_ROWS
        if any(key in flat[m] for m in models)
    ]
    parts = ["# Model comparison", "", markdown_table(["metric", *models], rows), ""]

    type_accuracy = {m: flat[m].get("vqa_accuracy_by_type") or {} for m in models}
    question_types = sorted({qtype for per_type in type_accuracy.values() for qtype in per_type})
    if question_types:
        type_rows = [
            _row(qtype, [type_accuracy[m].get(qtype) for m in models], True) for qtype in question_types
        ]
        parts += [
            "## VQA accuracy per question type (%)",
            "",
            markdown_table(["question type", *models], type_rows),
            "",
        ]
    path = Path(path)
    atomic_write_text(path, "\n".join(parts))
    return path


def collect_metrics(model_dirs: Mapping[str, str | Path]) -> dict[str, dict[str, Any]]:
    """``{model: {task: metrics}}`` from ``<dir>/<task>/metrics.json`` for each task folder present."""
    results: dict[str, dict[str, Any]] = {}
    for name, directory in model_dirs.items():
        directory = Path(directory)
        found = {
            task: directory / task / METRICS_FILE
            for task in TASKS
            if (directory / task / METRICS_FILE).is_file()
        }
        if not found:
            raise FileNotFoundError(
                f"{directory}: no <task>/{METRICS_FILE} for any task in {TASKS}; run the evaluation with "
                "output_dir=<dir>/<task> first"
            )
        results[name] = {task: json.loads(file.read_text()) for task, file in found.items()}
    return results
