"""POPE (object-hallucination yes/no questions, JSON lines) -> ``vqa`` schema.

Upstream files ``<dataset>_pope_<category>.json`` (one JSON object per line; categories ``random``,
``popular``, ``adversarial``)::

    {"question_id": 1, "image": "COCO_val2014_000000310196.jpg",
     "text": "Is there a snowboard in the image?", "label": "yes"}

A line's ``category`` field is used when present (the Hugging Face copies carry one); otherwise the
category is the file's. Question ids restart at 1 in each file, so ``question_id`` is
``"<category>-<id>"``. ``question_type`` is the category, ``candidates`` is ``["yes", "no"]``.
POPE has one split, ``test``; images default to ``<root>/val2014/``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import datasets

from vljepa.data.adapters.common import RowReader, build_dataset, convert_rows, read_jsonl
from vljepa.data.images import BadInputReport

POPE_CATEGORIES = ("random", "popular", "adversarial")
POPE_EXTRA_FEATURES = {"category": datasets.Value("string")}


def load_pope(
    split: str = "test",
    *,
    root: str | Path | None = None,
    image_root: str | Path | None = None,
    dataset: str = "coco",
    categories: Sequence[str] = POPE_CATEGORIES,
    on_bad_input: str | None = None,
    report: BadInputReport | None = None,
    check_images: bool = True,
) -> datasets.Dataset:
    """POPE questions from ``root/<dataset>_pope_<category>.json`` for each of ``categories``."""
    if split != "test":
        raise ValueError(f"POPE has one split, 'test'; got split={split!r}")
    if root is None:
        raise ValueError("pope needs root= (the folder holding coco_pope_random.json and friends)")
    unknown = [category for category in categories if category not in POPE_CATEGORIES]
    if unknown or not categories:
        raise ValueError(
            f"categories must be a non-empty subset of {POPE_CATEGORIES}; got {list(categories)}"
        )
    images = Path(image_root or Path(root) / "val2014")
    rows: list[dict[str, Any]] = []
    report = report if report is not None else BadInputReport()
    reader = RowReader(
        source=str(root), split=split, on_bad_input=on_bad_input, report=report, check_images=check_images
    )
    for category in categories:
        path = Path(root) / f"{dataset}_pope_{category}.json"
        file_reader = RowReader(
            source=str(path), split=split, on_bad_input=on_bad_input, report=report, check_images=check_images
        )

        def convert(record: Any, line: int | str, file_reader: RowReader = file_reader, category: str = category):
            row = f"{line}"
            question_id = file_reader.require(record, "question_id", row)
            label = file_reader.require(record, "label", row, kind=str).strip().lower()
            if label not in ("yes", "no"):
                raise file_reader.bad(row, "missing", f"field 'label' must be yes or no, got {label!r}")
            row_category = str(record.get("category") or category)
            image = file_reader.require(record, "image", row, kind=str)
            return {
                "image": file_reader.image(images, image, row),
                "question": file_reader.require(record, "text", row, kind=str),
                "answers": [label],
                "question_type": row_category,
                "candidates": ["yes", "no"],
                "image_id": Path(image).stem,
                "question_id": f"{row_category}-{question_id}",
                "category": row_category,
            }

        rows.extend(convert_rows(read_jsonl(path, what=f"POPE {category} file"), convert))
    return build_dataset(rows, task="vqa", split=split, extra_features=POPE_EXTRA_FEATURES,
                         unique_field="question_id", reader=reader)
