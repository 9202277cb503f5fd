"""Shared reading helpers for the corpus adapters: errors that name the file, row and field.

Structural problems (a missing annotation file, a file that is not JSON, a top-level layout that is not
the upstream one) always raise :class:`DataFormatError`. Problems with one row (a missing field, a
missing image file, a duplicate id) follow the ``on_bad_input`` policy of :mod:`vljepa.data.images`:
raise :class:`~vljepa.data.images.BadInputError` naming the file, row and field, or skip and count.
Images are checked for existence at load time; decoding is lazy (``load_image`` in the collator).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets

from vljepa.data.images import (
    BadInputError,
    BadInputReport,
    check_duplicate_ids,
    handle_bad_input,
    resolve_on_bad_input,
)
from vljepa.data.schema import features_for, with_extra_features

logger = logging.getLogger(__name__)


class DataFormatError(ValueError):
    """An upstream file is missing or not in the upstream layout; the message names the file."""


class SkipRow(Exception):
    """Raised inside an adapter's row conversion after a bad input was recorded under ``skip``."""


def require_file(path: str | Path, *, what: str) -> Path:
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(f"{what} not found: {path} (download it, or pass its path explicitly)")
    return path


def read_text(path: str | Path, *, what: str) -> str:
    """The text of a UTF-8 file (a leading byte-order mark is dropped); bytes that are not UTF-8 raise
    :class:`DataFormatError` naming the file, the line and the byte offset."""
    path = require_file(path, what=what)
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        offset = error.start + (3 if data.startswith(b"\xef\xbb\xbf") else 0)
        line = data[:offset].count(b"\n") + 1
        raise DataFormatError(
            f"{path} line {line} is not UTF-8 (byte {data[offset:offset + 1]!r} at offset {offset}); "
            "re-save the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8`)"
        ) from None


def read_json(path: str | Path, *, what: str) -> Any:
    text = read_text(path, what=what)
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise DataFormatError(f"{path} is not valid JSON ({error})") from error


def read_jsonl(path: str | Path, *, what: str) -> Iterator[tuple[int, Any]]:
    """``(line number, record)`` for every non-blank line of a JSON-lines file."""
    text = read_text(path, what=what)
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as error:
            raise DataFormatError(f"{path} line {number} is not valid JSON ({error})") from error


def path_inside(folder: Path, name: str, *, where: str) -> Path:
    """``folder / name`` for a relative ``name`` that stays inside ``folder``; an absolute name or one whose
    ``..`` parts climb out of ``folder`` raises :class:`DataFormatError` naming ``where`` (file and row).

    The check is on the path as written (symbolic links inside the dataset folder are the user's own)."""
    if not isinstance(name, str):
        raise DataFormatError(f"{where}: the image file name must be a string, got {type(name).__name__}")
    if os.path.isabs(name) or name.startswith(("/", "\\")) or os.path.splitdrive(name)[0]:
        raise DataFormatError(
            f"{where}: image file name {name!r} is an absolute path; annotation file names must be relative "
            f"to the dataset folder {folder}"
        )
    parts = Path(os.path.normpath(name.replace("\\", "/"))).parts
    if parts and parts[0] == "..":
        raise DataFormatError(
            f"{where}: image file name {name!r} points outside the dataset folder {folder}; refused (use a "
            "path inside that folder, or move the images into it)"
        )
    return folder / name


def expect_type(value: Any, expected: type | tuple[type, ...], *, where: str) -> Any:
    if not isinstance(value, expected):
        names = expected.__name__ if isinstance(expected, type) else " or ".join(t.__name__ for t in expected)
        raise DataFormatError(f"{where} must be a JSON {names}, got {type(value).__name__}")
    return value


@dataclass
class RowReader:
    """Per-file context for reading rows under the bad-input policy.

    ``require(record, name, row)`` returns a required field or raises/skips naming ``source``, row and field.
    """

    source: str
    split: str
    on_bad_input: str | None = None
    report: BadInputReport | None = None
    check_images: bool = True
    policy: str = field(init=False)

    def __post_init__(self) -> None:
        self.policy = resolve_on_bad_input(self.on_bad_input, self.split)
        if self.report is None:
            self.report = BadInputReport()

    def bad(self, row: int | str, reason: str, detail: str) -> SkipRow:
        """Raise the bad-input error under ``error``; under ``skip`` count it and return SkipRow to raise."""
        handle_bad_input(
            BadInputError(f"{self.source} row {row}", reason, detail),
            on_bad_input=self.policy,
            report=self.report,
        )
        return SkipRow()

    def require(
        self, record: Any, name: str, row: int | str, *, kind: type | tuple[type, ...] | None = None
    ) -> Any:
        if not isinstance(record, Mapping):
            raise DataFormatError(
                f"{self.source} row {row} must be a JSON object, got {type(record).__name__}"
            )
        value = record.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            raise self.bad(row, "missing", f"field {name!r} is missing or empty")
        if kind is not None and not isinstance(value, kind):
            raise self.bad(row, "missing", f"field {name!r} has type {type(value).__name__}")
        return value

    def image(self, folder: Path, name: str, row: int | str) -> str:
        """The path of image ``name`` inside ``folder`` (refused if it escapes it), checked to exist."""
        path = path_inside(folder, name, where=f"{self.source} row {row}")
        if self.check_images and not path.is_file():
            raise self.bad(row, "not_found", f"image file {path} does not exist")
        return str(path)

    def finish(self) -> None:
        if self.report is not None and self.report.total:
            logger.warning("%s: %s", self.source, self.report.summary())


def convert_rows(
    records: Iterable[tuple[int | str, Any]], convert: Callable[[Any, int | str], dict[str, Any]]
) -> list[dict[str, Any]]:
    """``convert(record, row)`` for each ``(row, record)``; a record whose conversion raised :class:`SkipRow`
    (a bad input under ``on_bad_input: skip``, already counted) is left out."""
    rows = []
    for row, record in records:
        try:
            rows.append(convert(record, row))
        except SkipRow:
            continue
    return rows


def build_dataset(
    rows: list[dict[str, Any]],
    *,
    task: str,
    split: str,
    extra_features: Mapping[str, Any] | None = None,
    unique_field: str,
    reader: RowReader,
) -> datasets.Dataset:
    """A ``datasets.Dataset`` in ``task``'s schema from converted rows; repeats of ``unique_field`` are
    bad inputs (the first row wins under ``skip``)."""
    keep = check_duplicate_ids(
        [row[unique_field] for row in rows],
        source=reader.source,
        field_name=unique_field,
        on_bad_input=reader.policy,
        report=reader.report,
    )
    rows = [rows[index] for index in keep]
    features = with_extra_features(task, extra_features or {}) if extra_features else features_for(task)
    columns = {key: [row[key] for row in rows] for key in features}
    reader.finish()
    if not rows:
        raise DataFormatError(f"{reader.source}: no usable rows for split {split!r}")
    return datasets.Dataset.from_dict(columns, features=features, split=datasets.Split(split))
