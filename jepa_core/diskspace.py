"""Failed checkpoint saves: tell a full disk apart from other write errors, and say how much space is needed.

Writers report a full disk in several ways: ``OSError(ENOSPC)`` from Python, ``SafetensorError`` ("... os error
28 ... No space left on device") from safetensors, and ``RuntimeError`` ("PytorchStreamWriter failed writing
file ...: file write failed") from ``torch.save``, which names no errno. :func:`is_disk_full` recognises all of
them (and any write error while less space is free than the checkpoint needs); :func:`space_report` is the
sentence that goes into the error message: free space on the device against the size of a checkpoint.

Example::

    >>> from jepa_core.diskspace import format_bytes
    >>> format_bytes(3 * 2**30)
    '3.0 GiB'
"""

from __future__ import annotations

import errno
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

_DISK_FULL_MARKERS = ("no space left", "os error 28", "storagefull", "disk quota", "file write failed",
                      "failed writing file")


class CheckpointSaveError(RuntimeError):
    """A checkpoint could not be written (e.g. the disk is full); the previous one is intact."""


def format_bytes(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def folder_bytes(path: str | Path | None) -> int:
    """Total size of the files under ``path`` (0 when it does not exist)."""
    if path is None or not Path(path).is_dir():
        return 0
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


def tensor_bytes(objects: Iterable[Any]) -> int:
    """Bytes of every tensor in the state dicts of ``objects`` (modules, optimizers): a checkpoint size estimate."""

    def walk(value: Any) -> int:
        if isinstance(value, torch.Tensor):
            return value.numel() * value.element_size()
        if isinstance(value, dict):
            return sum(walk(v) for v in value.values())
        if isinstance(value, (list, tuple)):
            return sum(walk(v) for v in value)
        return 0

    return sum(walk(obj.state_dict()) for obj in objects if hasattr(obj, "state_dict"))


def free_bytes(path: str | Path) -> int | None:
    """Free bytes on the file system holding ``path`` (its nearest existing parent), or None if unknown."""
    path = Path(path)
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return None


def is_disk_full(error: BaseException, *, free: int | None = None, needed: int | None = None) -> bool:
    """True for the ways writers report a full disk, or a write error while ``free < needed``."""
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    text = str(error).lower()
    if any(marker in text for marker in _DISK_FULL_MARKERS):
        return True
    return free is not None and needed is not None and free < needed


def space_report(folder: str | Path, needed: int) -> str:
    """"X free on the device holding FOLDER; a checkpoint needs about Y." (Y: a previous checkpoint's size or
    the tensors to save)."""
    free = free_bytes(folder)
    available = format_bytes(free) if free is not None else "an unknown amount of space"
    return f"{available} free on the device holding {folder}; a checkpoint needs about {format_bytes(needed)}."
