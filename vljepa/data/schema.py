"""One schema per task: what every VL-JEPA dataset looks like after its adapter.

Model code and collators only ever see these columns, never an upstream file format.

* ``captioning`` (also used for retrieval): ``image`` (``datasets.Image()``), ``captions: list[str]``
  (at least one), ``image_id: str``.
* ``vqa``: ``image``, ``question: str``, ``answers: list[str]`` (10 human answers in VQAv2-style data,
  one for easy-vqa and the generated scenes, empty only for unannotated test splits),
  ``question_type: str``, ``candidates: list[str]`` (closed answer set; an empty list when the task is
  open-ended), ``image_id: str``, ``question_id: str``.
* ``stream`` (video): ``frames`` (a list of images), ``fps: float``, ``annotations``: a list of
  ``{start, end, text}`` in seconds, ``stream_id: str``.

Datasets may carry extra columns (e.g. ``answer_type`` for VQAv2, ``objects`` for generated scenes);
validation checks only that the task's columns are present with the right types.

Example:
    >>> from vljepa.data.schema import VQA_FEATURES, validate_dataset
    >>> import datasets
    >>> ds = datasets.Dataset.from_dict({"image": [], "question": [], "answers": [], "question_type": [],
    ...     "candidates": [], "image_id": [], "question_id": []}, features=VQA_FEATURES)
    >>> validate_dataset(ds, "vqa")
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import datasets
import PIL.Image

TaskName = Literal["captioning", "vqa", "stream"]

CAPTION_FEATURES = datasets.Features(
    {
        "image": datasets.Image(),
        "captions": datasets.List(datasets.Value("string")),
        "image_id": datasets.Value("string"),
    }
)

VQA_FEATURES = datasets.Features(
    {
        "image": datasets.Image(),
        "question": datasets.Value("string"),
        "answers": datasets.List(datasets.Value("string")),
        "question_type": datasets.Value("string"),
        "candidates": datasets.List(datasets.Value("string")),
        "image_id": datasets.Value("string"),
        "question_id": datasets.Value("string"),
    }
)

ANNOTATION_FEATURE = {
    "start": datasets.Value("float64"),
    "end": datasets.Value("float64"),
    "text": datasets.Value("string"),
}

STREAM_FEATURES = datasets.Features(
    {
        "frames": datasets.List(datasets.Image()),
        "fps": datasets.Value("float64"),
        "annotations": datasets.List(ANNOTATION_FEATURE),
        "stream_id": datasets.Value("string"),
    }
)

TASK_FEATURES: dict[str, datasets.Features] = {
    "captioning": CAPTION_FEATURES,
    "vqa": VQA_FEATURES,
    "stream": STREAM_FEATURES,
}


class SchemaError(ValueError):
    """A dataset or example does not follow its task schema; the message names the row and field."""


def features_for(task: str) -> datasets.Features:
    """The ``datasets.Features`` of ``task`` (``captioning``, ``vqa`` or ``stream``)."""
    if task not in TASK_FEATURES:
        raise SchemaError(f"unknown task {task!r}; expected one of {sorted(TASK_FEATURES)}")
    return TASK_FEATURES[task]


def with_extra_features(task: str, extra: Mapping[str, Any]) -> datasets.Features:
    """The task's features plus extra columns (which must not redefine a task column)."""
    base = features_for(task)
    clash = sorted(set(base) & set(extra))
    if clash:
        raise SchemaError(f"extra columns {clash} would redefine columns of the {task!r} schema")
    return datasets.Features({**base, **extra})


def _is_image_value(value: Any) -> bool:
    if isinstance(value, (PIL.Image.Image, bytes, bytearray, Path)):
        return True
    if isinstance(value, str):
        return bool(value)
    if isinstance(value, Mapping):
        return bool(value.get("path")) or bool(value.get("bytes"))
    return False


def _check_str(example: Mapping[str, Any], key: str, where: str, *, allow_empty: bool = False) -> None:
    value = example[key]
    if not isinstance(value, str):
        raise SchemaError(f"{where}: field {key!r} must be a string, got {type(value).__name__}")
    if not allow_empty and not value.strip():
        raise SchemaError(f"{where}: field {key!r} is empty")


def _check_str_list(example: Mapping[str, Any], key: str, where: str, *, min_len: int) -> None:
    value = example[key]
    if not isinstance(value, (list, tuple)):
        raise SchemaError(f"{where}: field {key!r} must be a list of strings, got {type(value).__name__}")
    if len(value) < min_len:
        raise SchemaError(f"{where}: field {key!r} needs at least {min_len} item(s), got {len(value)}")
    for position, item in enumerate(value):
        if not isinstance(item, str) or not item.strip():
            raise SchemaError(f"{where}: {key}[{position}] must be a non-empty string, got {item!r}")


def validate_example(example: Mapping[str, Any], task: str, *, row: int | str | None = None) -> None:
    """Raise :class:`SchemaError` (naming ``row`` and the field) unless ``example`` follows ``task``'s schema.

    Images may be decoded (``PIL.Image``) or undecoded (``{"path", "bytes"}`` dicts, paths, bytes).
    """
    where = f"row {row}" if row is not None else "example"
    features = features_for(task)
    missing = [key for key in features if key not in example]
    if missing:
        raise SchemaError(f"{where}: missing field(s) {missing} of the {task!r} schema")
    if task == "captioning":
        if not _is_image_value(example["image"]):
            raise SchemaError(f"{where}: field 'image' is missing or empty")
        _check_str_list(example, "captions", where, min_len=1)
        _check_str(example, "image_id", where)
    elif task == "vqa":
        if not _is_image_value(example["image"]):
            raise SchemaError(f"{where}: field 'image' is missing or empty")
        for key in ("question", "question_type", "image_id", "question_id"):
            _check_str(example, key, where)
        _check_str_list(example, "answers", where, min_len=0)
        _check_str_list(example, "candidates", where, min_len=0)
        if example["candidates"]:
            outside = [answer for answer in example["answers"] if answer not in example["candidates"]]
            if outside:
                raise SchemaError(f"{where}: answers {outside} are not among the candidates")
    elif task == "stream":
        _validate_stream(example, where)


def _validate_stream(example: Mapping[str, Any], where: str) -> None:
    frames = example["frames"]
    if isinstance(frames, (str, Path)):
        if not str(frames):
            raise SchemaError(f"{where}: field 'frames' is an empty path")
    elif not isinstance(frames, (list, tuple)) or not frames:
        raise SchemaError(f"{where}: field 'frames' must be a non-empty list of images or a path")
    elif not all(_is_image_value(frame) for frame in frames):
        raise SchemaError(f"{where}: field 'frames' holds a missing or empty image")
    fps = example["fps"]
    if not isinstance(fps, (int, float)) or fps <= 0:
        raise SchemaError(f"{where}: field 'fps' must be a positive number, got {fps!r}")
    _check_str(example, "stream_id", where)
    annotations = example["annotations"]
    if not isinstance(annotations, (list, tuple)):
        raise SchemaError(f"{where}: field 'annotations' must be a list of {{start, end, text}}")
    duration = len(frames) / fps if isinstance(frames, (list, tuple)) else None
    for position, item in enumerate(annotations):
        label = f"{where}: annotations[{position}]"
        if not isinstance(item, Mapping) or any(key not in item for key in ANNOTATION_FEATURE):
            raise SchemaError(f"{label} must be a dict with keys start, end, text; got {item!r}")
        if not (0 <= item["start"] < item["end"]):
            raise SchemaError(f"{label}: needs 0 <= start < end, got start={item['start']} end={item['end']}")
        if duration is not None and item["end"] > duration + 1e-6:
            raise SchemaError(f"{label}: end {item['end']} is after the stream's end ({duration:.3f} s)")
        if not isinstance(item["text"], str) or not item["text"].strip():
            raise SchemaError(f"{label}: field 'text' is empty")


def validate_dataset(
    dataset: datasets.Dataset | datasets.IterableDataset, task: str, *, check_rows: int | None = 64
) -> None:
    """Check that ``dataset`` has the task's columns with the task's feature types, then check rows.

    ``check_rows`` rows are validated with :func:`validate_example` (``None``: all rows). Images are
    not decoded: the check reads the undecoded ``{"path", "bytes"}`` storage.
    """
    expected = features_for(task)
    actual = dataset.features
    if actual is None:
        raise SchemaError(f"the dataset has no declared features; cast it to the {task!r} schema first")
    for key, feature in expected.items():
        if key not in actual:
            raise SchemaError(f"column {key!r} of the {task!r} schema is missing (columns: {list(actual)})")
        if repr(actual[key]) != repr(feature):
            raise SchemaError(
                f"column {key!r} has type {actual[key]!r}; the {task!r} schema needs {feature!r}"
            )
    undecoded = undecoded_images(dataset, expected)
    for row, example in enumerate(undecoded):
        if check_rows is not None and row >= check_rows:
            break
        validate_example(example, task, row=row)


def undecoded_images(dataset: Any, features: datasets.Features | None = None) -> Any:
    """``dataset`` with its image columns cast to ``decode=False``: rows hold ``{"path", "bytes"}``.

    Collators use this with :class:`vljepa.data.images.ImageLoader`, so a bad file goes through the
    bad-input policy instead of failing inside ``datasets``' own decoding.
    """
    for key, feature in (features if features is not None else dataset.features).items():
        if isinstance(feature, datasets.Image):
            dataset = dataset.cast_column(key, datasets.Image(decode=False))
        elif isinstance(feature, datasets.List) and isinstance(feature.feature, datasets.Image):
            dataset = dataset.cast_column(key, datasets.List(datasets.Image(decode=False)))
    return dataset
