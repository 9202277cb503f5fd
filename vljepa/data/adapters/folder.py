"""A user's image folder with ``metadata.jsonl`` or ``metadata.csv`` -> ``captioning`` or ``vqa``.

Like Hugging Face's ``imagefolder``: each metadata row has a ``file_name`` relative to the metadata
file's folder, plus

* captioning: ``caption`` (one string) or ``captions`` (a list; put all of an image's captions in one
  row: a repeated ``file_name`` is a duplicate id); optional ``image_id`` (default: ``file_name``);
* VQA: ``question`` and ``answers`` (a list) or ``answer`` (one string); optional ``question_type``
  (default ``"unspecified"``), ``candidates`` (list, default empty), ``image_id`` (default
  ``file_name``), ``question_id`` (default ``"<split>-<row>"``).

In ``metadata.csv`` a list cell is written as a JSON list (``["a dog", "a brown dog"]``); any other cell is
one string. The task is chosen by the columns (``question`` -> vqa, ``caption``/``captions`` ->
captioning) unless ``task=`` is given; a file with both needs ``task=``.

Splits: ``<root>/<split>/metadata.*`` when that folder exists; otherwise ``<root>/metadata.*`` serves
the ``train`` split only.

Example:
    >>> from vljepa.data import load_vl_dataset
    >>> ds = load_vl_dataset("folder", split="train", root="my_images")  # doctest: +SKIP
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any, Literal

import datasets

from vljepa.data.adapters.common import (
    DataFormatError,
    RowReader,
    SkipRow,
    build_dataset,
    read_jsonl,
    read_text,
)
from vljepa.data.images import BadInputReport

METADATA_NAMES = ("metadata.jsonl", "metadata.csv")


def _metadata_file(root: Path, split: str) -> Path:
    for folder in (root / split, root) if split == "train" else (root / split,):
        found = [folder / name for name in METADATA_NAMES if (folder / name).is_file()]
        if len(found) > 1:
            raise DataFormatError(f"{folder} has both metadata.jsonl and metadata.csv; keep one")
        if found:
            return found[0]
    present = sorted(
        p.name for p in root.iterdir() if p.is_dir() and any((p / n).is_file() for n in METADATA_NAMES)
    )
    raise DataFormatError(
        f"no metadata.jsonl or metadata.csv for split {split!r} under {root} "
        f"(split folders with metadata: {present or 'none'}; a root-level file serves 'train' only)"
    )


def _read_rows(path: Path) -> list[tuple[str, dict[str, Any]]]:
    if path.suffix == ".jsonl":
        return [(f"line {line}", record) for line, record in read_jsonl(path, what="image-folder metadata")]
    reader = csv.DictReader(io.StringIO(read_text(path, what="image-folder metadata"), newline=""))
    if reader.fieldnames is None or "file_name" not in reader.fieldnames:
        raise DataFormatError(f"{path}: missing column 'file_name' (columns: {reader.fieldnames})")
    return [(f"line {number}", dict(record)) for number, record in enumerate(reader, start=2)]


def _as_list(value: Any, *, where: str, name: str) -> list[str]:
    if isinstance(value, str) and value.strip().startswith("["):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as error:
            raise DataFormatError(f"{where}: field {name!r} is not a valid JSON list ({error})") from error
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(item, str) and item.strip() for item in value):
        raise DataFormatError(f"{where}: field {name!r} must be a list of non-empty strings, got {value!r}")
    return [item.strip() for item in value]


def _choose_task(columns: set[str], task: str | None, path: Path) -> str:
    has_vqa = "question" in columns
    has_captions = bool({"caption", "captions"} & columns)
    if task is not None:
        if task not in ("captioning", "vqa"):
            raise ValueError(f"task must be 'captioning' or 'vqa', got {task!r}")
        return task
    if has_vqa and has_captions:
        raise DataFormatError(
            f"{path} has both question and caption columns; pass task='vqa' or 'captioning'"
        )
    if not (has_vqa or has_captions):
        raise DataFormatError(
            f"{path}: needs a 'question' column (vqa) or 'caption'/'captions' (captioning); "
            f"found {sorted(columns)}"
        )
    return "vqa" if has_vqa else "captioning"


def load_image_folder(
    split: str = "train",
    *,
    root: str | Path | None = None,
    task: Literal["captioning", "vqa"] | None = None,
    on_bad_input: str | None = None,
    report: BadInputReport | None = None,
    check_images: bool = True,
) -> datasets.Dataset:
    """An image folder with metadata as a ``captioning`` or ``vqa`` dataset (see the module doc)."""
    if root is None:
        raise ValueError("folder needs root= (the folder holding metadata.jsonl or metadata.csv)")
    root = Path(root)
    if not root.is_dir():
        raise DataFormatError(f"image folder not found: {root}")
    path = _metadata_file(root, split)
    records = _read_rows(path)
    if not records:
        raise DataFormatError(f"{path} has no rows")
    columns = set().union(*(record.keys() for _, record in records if isinstance(record, dict)))
    chosen = _choose_task(columns, task, path)
    reader = RowReader(
        source=str(path), split=split, on_bad_input=on_bad_input, report=report, check_images=check_images
    )
    rows: list[dict[str, Any]] = []
    for index, (row, record) in enumerate(records):
        try:
            file_name = reader.require(record, "file_name", row, kind=str)
            base = {
                "image": reader.image(path.parent, file_name, row),
                "image_id": str(record.get("image_id") or file_name),
            }
            where = f"{path} {row}"
            if chosen == "captioning":
                name = "captions" if record.get("captions") not in (None, "") else "caption"
                rows.append(
                    {**base, "captions": _as_list(reader.require(record, name, row), where=where, name=name)}
                )
                continue
            name = "answers" if record.get("answers") not in (None, "") else "answer"
            candidates = record.get("candidates")
            rows.append(
                {
                    **base,
                    "question": reader.require(record, "question", row, kind=str),
                    "answers": _as_list(reader.require(record, name, row), where=where, name=name),
                    "question_type": str(record.get("question_type") or "unspecified"),
                    "candidates": _as_list(candidates, where=where, name="candidates") if candidates else [],
                    "question_id": str(record.get("question_id") or f"{split}-{index}"),
                }
            )
        except SkipRow:
            continue
    unique = "image_id" if chosen == "captioning" else "question_id"
    return build_dataset(rows, task=chosen, split=split, unique_field=unique, reader=reader)
