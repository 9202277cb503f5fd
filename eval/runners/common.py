"""Helpers shared by the task runners: dataset rows, field checks, image decoding, batching, progress bars.

Images are decoded by :func:`vljepa.data.images.decode_image` (data code, not model code), the one decode
function of training, the feature cache and ``vljepa decode``, under the bad-input policy ``on_bad_input``:
``"error"`` raises naming the row and file, ``"skip"`` leaves the row out of the scores and lists it in
``metrics.json`` (``skipped_bad_inputs``, ``bad_inputs``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from eval.distributed import ShardContext
from vljepa.data.images import BadInputReport, check_policy, decode_image, image_context


def dataset_length(dataset: Any, task: str) -> int:
    try:
        length = len(dataset)
    except TypeError as err:
        raise TypeError(
            f"{task}: the dataset must be a datasets.Dataset or a list of dicts, got {type(dataset).__name__}"
        ) from err
    if length == 0:
        raise ValueError(f"{task}: the dataset is empty")
    return length


def get_row(dataset: Any, index: int, fields: Sequence[str], task: str) -> dict[str, Any]:
    """Row ``index`` as a dict, checking that it has every field in ``fields``."""
    row = dataset[int(index)]
    if not isinstance(row, dict):
        raise TypeError(f"{task}: dataset row {index} is a {type(row).__name__}, expected a dict of fields")
    missing = [name for name in fields if name not in row]
    if missing:
        raise KeyError(
            f"{task}: dataset row {index} has no field(s) {missing}; it has {sorted(row)}. "
            f"The {task} schema needs {list(fields)}."
        )
    return row


def column(dataset: Any, name: str, task: str) -> list[Any]:
    """All values of one (non-image) field, without decoding images of a ``datasets.Dataset``."""
    column_names = getattr(dataset, "column_names", None)
    if column_names is not None:
        if name not in column_names:
            raise KeyError(f"{task}: the dataset has no column '{name}'; its columns are {column_names}")
        return list(dataset[name])
    values = []
    for index, row in enumerate(dataset):
        if name not in row:
            raise KeyError(f"{task}: dataset row {index} has no field '{name}'; it has {sorted(row)}")
        values.append(row[name])
    return values


def image_view(dataset: Any) -> Any:
    """``dataset`` with its image columns left undecoded (``{"path", "bytes"}``), so that rows are decoded by
    :func:`image_rows` under the bad-input policy rather than inside ``datasets``; other datasets as they are."""
    features = getattr(dataset, "features", None)
    if features is None or not hasattr(dataset, "cast_column"):
        return dataset
    from vljepa.data.schema import undecoded_images

    return undecoded_images(dataset)


def image_rows(
    dataset: Any, batch: Sequence[int], fields: Sequence[str], task: str, on_bad_input: str
) -> tuple[list[dict[str, Any]], list[int], list[Image.Image], list[dict[str, Any]]]:
    """The rows of ``batch`` whose image decodes: ``(rows, indices, RGB images, skipped records)``.

    A bad image raises :class:`~vljepa.data.images.BadInputError` naming the row and file under ``"error"``;
    under ``"skip"`` its row is left out and a record ``{"index", "skipped": {where, reason, detail}}`` is
    returned, to be gathered with the others and split off by :func:`split_skipped`.
    """
    check_policy(on_bad_input)
    rows, indices, images, skipped = [], [], [], []
    for index in batch:
        row = get_row(dataset, index, fields, task)
        report = BadInputReport(max_examples=1)
        context = image_context(f"{task}: dataset row {index}", row["image"])
        image = decode_image(row["image"], on_bad_input=on_bad_input, report=report, context=context)
        if image is None:
            skipped.append({"index": index, "skipped": report.examples[0]})
            continue
        rows.append(row)
        indices.append(index)
        images.append(image)
    return rows, indices, images, skipped


def split_skipped(records: list[dict[str, Any]], task: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Scored records, and the ``metrics.json`` entries of the skipped rows (count and each row and file)."""
    scored = [record for record in records if "skipped" not in record]
    bad = [{"index": record["index"], **record["skipped"]} for record in records if "skipped" in record]
    if not scored:
        raise ValueError(f"{task}: no row could be scored: every image is a bad input (first: {bad[0]})")
    return scored, {"skipped_bad_inputs": len(bad), "bad_inputs": bad}


def check_text(value: Any, index: int, field: str, task: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{task}: dataset row {index} field '{field}' must be a string, got {value!r}")
    return value


def check_text_list(value: Any, index: int, field: str, task: str, *, allow_empty: bool) -> list[str]:
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise TypeError(
            f"{task}: dataset row {index} field '{field}' must be a list of strings, got {value!r}"
        )
    if not value and not allow_empty:
        raise ValueError(f"{task}: dataset row {index} field '{field}' is empty; give at least one string")
    for item in value:
        if not isinstance(item, str):
            raise TypeError(f"{task}: dataset row {index} field '{field}' holds a non-string item {item!r}")
    return list(value)


def check_batch_size(batch_size: int) -> None:
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")


def batches(indices: Sequence[int], batch_size: int) -> Iterator[list[int]]:
    for start in range(0, len(indices), batch_size):
        yield list(indices[start : start + batch_size])


def progress(iterable: Iterable[Any], *, total: int, desc: str, shards: ShardContext) -> Iterable[Any]:
    """A tqdm bar on the main process only (the other processes iterate silently)."""
    return tqdm(iterable, total=total, desc=desc, disable=not shards.is_main_process, leave=False)


def model_output(value: Any, *, rows: int, method: str, model: Any) -> np.ndarray:
    """A model's ``[rows, ...]`` tensor output as a float32 CPU array, checking the row count."""
    tensor = torch.as_tensor(value)
    if tensor.ndim != 2 or tensor.shape[0] != rows:
        raise ValueError(
            f"{type(model).__name__}.{method} returned shape {tuple(tensor.shape)}; expected [{rows}, ...] "
            f"(one row per input)"
        )
    return tensor.detach().to(device="cpu", dtype=torch.float32).numpy()
