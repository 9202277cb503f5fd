"""Any ``datasets.load_dataset`` source -> ``captioning`` or ``vqa``: a Hub dataset id, or ``imagefolder``
(with ``data_dir``, images plus ``metadata.jsonl`` / ``metadata.csv``), with the column names given.

    >>> from vljepa.data import load_vl_dataset
    >>> ds = load_vl_dataset("hub", split="train", path="imagefolder", data_dir="my_images", task="captioning",
    ...                      caption_column="text")                                   # doctest: +SKIP

Rows are mapped onto the task schema (:mod:`vljepa.data.schema`): a caption or answer given as one string
becomes a one-element list, ids default to ``<split>-<row>``. Images stay undecoded here, so a file that
cannot be decoded meets the same bad-input policy (``on_bad_input``) as every other source, in the collator.
A missing column or an empty caption / question is a :class:`~vljepa.data.schema.SchemaError` naming the
row. The ``folder`` adapter (:mod:`vljepa.data.adapters.folder`) stays for what ``imagefolder`` does not do:
it refuses image paths that escape the dataset folder and names the metadata file and line of a bad row.
"""

from __future__ import annotations

from typing import Any, Literal

import datasets

from vljepa.data.adapters.common import DataFormatError
from vljepa.data.schema import features_for, validate_dataset


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else [str(v) for v in value]


def load_hub_dataset(
    split: str = "train",
    *,
    path: str,
    task: Literal["captioning", "vqa"],
    name: str | None = None,
    data_dir: str | None = None,
    revision: str | None = None,
    image_column: str = "image",
    caption_column: str = "caption",
    question_column: str = "question",
    answer_column: str = "answers",
    image_id_column: str | None = None,
) -> datasets.Dataset:
    """``datasets.load_dataset(path, name, data_dir=..., split=...)`` mapped onto the ``task`` schema."""
    if task not in ("captioning", "vqa"):
        raise ValueError(f"task must be 'captioning' or 'vqa', got {task!r}")
    raw = datasets.load_dataset(path, name, data_dir=data_dir, split=split, revision=revision)
    needed = [image_column, *([caption_column] if task == "captioning" else [question_column, answer_column])]
    needed += [image_id_column] if image_id_column else []
    missing = [column for column in needed if column not in raw.column_names]
    if missing:
        raise DataFormatError(
            f"{path}{f' ({data_dir})' if data_dir else ''} split {split!r} has no column(s) {missing}; its columns "
            f"are {raw.column_names} (name them with image_column / caption_column / question_column / "
            "answer_column)"
        )
    if not isinstance(raw.features[image_column], datasets.Image):
        raise DataFormatError(f"{path}: column {image_column!r} is {raw.features[image_column]!r}, not an image")
    raw = raw.cast_column(image_column, datasets.Image(decode=False))  # decoding happens under on_bad_input

    def to_schema(row: dict[str, Any], index: int) -> dict[str, Any]:
        image_id = str(row[image_id_column]) if image_id_column else f"{split}-{index}"
        if task == "captioning":
            return {"image": row[image_column], "captions": _as_list(row[caption_column]), "image_id": image_id}
        return {"image": row[image_column], "question": row[question_column] or "",
                "answers": _as_list(row[answer_column]), "question_type": "unspecified", "candidates": [],
                "image_id": image_id, "question_id": f"{split}-{index}"}

    features = features_for(task).copy()
    features["image"] = datasets.Image(decode=False)
    dataset = raw.map(to_schema, with_indices=True, remove_columns=raw.column_names, features=features)
    dataset = dataset.cast_column("image", datasets.Image())
    validate_dataset(dataset, task, check_rows=None)
    return dataset
