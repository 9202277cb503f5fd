"""Helpers shared by the task runners: dataset rows, field checks, batching, progress bars."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from eval.distributed import ShardContext


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


def check_image(value: Any, index: int, task: str) -> Image.Image:
    if not isinstance(value, Image.Image):
        raise TypeError(
            f"{task}: dataset row {index} field 'image' is a {type(value).__name__}, expected a PIL image "
            "(cast the column with datasets.Image() or open the file with PIL.Image.open)"
        )
    return value


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
