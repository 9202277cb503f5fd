"""What every evaluation task leaves on disk: ``metrics.json``, ``predictions.jsonl``, ``report.md`` + PNGs.

Only the main process writes. Files are written atomically, so an interrupted run never leaves a
half-written ``metrics.json``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from jepa_core.rundir import atomic_write_text, write_json

METRICS_FILE = "metrics.json"
PREDICTIONS_FILE = "predictions.jsonl"
REPORT_FILE = "report.md"


def json_ready(value: Any) -> Any:
    """Convert numpy / torch scalars and arrays (recursively) into plain JSON types."""
    if isinstance(value, Mapping):
        return {str(key): json_ready(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(item) for item in value]
    if isinstance(value, np.ndarray):
        return json_ready(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if hasattr(value, "tolist") and callable(value.tolist):  # torch tensors
        return json_ready(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


def format_value(value: Any, *, percent: bool) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        return str(value)
    return f"{value * 100:.2f}" if percent else f"{value:.4f}"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


@dataclass
class TaskReport:
    """The human-readable part of a task's output.

    Attributes:
        title: report heading, e.g. ``"VQA evaluation"``.
        summary: metric name -> value shown in the main table (scalars only).
        percent_keys: names in ``summary`` that are fractions, shown as percentages.
        sections: extra Markdown sections (heading -> body), in order.
        figures: file name (in the output directory) -> caption.
    """

    title: str
    summary: dict[str, Any]
    percent_keys: set[str] = field(default_factory=set)
    sections: dict[str, str] = field(default_factory=dict)
    figures: dict[str, str] = field(default_factory=dict)

    def summary_table(self) -> str:
        rows = [
            (
                name + (" (%)" if name in self.percent_keys else ""),
                format_value(value, percent=name in self.percent_keys),
            )
            for name, value in self.summary.items()
        ]
        return markdown_table(["metric", "value"], rows)

    def to_markdown(self) -> str:
        parts = [f"# {self.title}", "", self.summary_table(), ""]
        for heading, body in self.sections.items():
            parts += [f"## {heading}", "", body, ""]
        if self.figures:
            parts += ["## Figures", ""]
            for file_name, caption in self.figures.items():
                parts += [f"### {caption}", "", f"![{caption}]({file_name})", ""]
        return "\n".join(parts)


def write_task_outputs(
    output_dir: str | Path,
    *,
    metrics: Mapping[str, Any],
    predictions: Sequence[Mapping[str, Any]],
    report: TaskReport,
) -> Path:
    """Write ``metrics.json``, ``predictions.jsonl`` and ``report.md`` into ``output_dir`` (figures are
    expected to be there already)."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    for file_name in report.figures:
        if not (output_dir / file_name).is_file():
            raise FileNotFoundError(f"report figure {output_dir / file_name} was not written")
    write_json(output_dir / METRICS_FILE, json_ready(dict(metrics)))
    lines = [json.dumps(json_ready(dict(record)), ensure_ascii=False) for record in predictions]
    atomic_write_text(output_dir / PREDICTIONS_FILE, "\n".join(lines) + ("\n" if lines else ""))
    atomic_write_text(output_dir / REPORT_FILE, report.to_markdown())
    return output_dir


def print_summary(report: TaskReport) -> None:
    """Print the summary table (the CLI result table) to stdout."""
    print(f"\n{report.title}\n{report.summary_table()}\n")
