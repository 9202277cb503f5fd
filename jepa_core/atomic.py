"""Atomic file writes: a temporary sibling, renamed over the target only once it is complete.

Every file the library writes (run metadata, metrics, model weights, feature-cache shards) goes through
:func:`atomic_path`, so a kill or a full disk never leaves a half-written file under the final name. The
temporary file comes from ``tempfile.mkstemp``, which creates it with mode 0600; it is given the mode an
ordinary ``open()`` would give (``0666`` minus the user's umask) before the rename, so that weights in a
shared cache or an output folder are readable by whoever the user's umask allows, as with any other tool.

Example::

    >>> from jepa_core.atomic import atomic_path, atomic_write_text
    >>> atomic_write_text("out/metrics.json", "{}\\n")                    # doctest: +SKIP
    >>> with atomic_path("out/model.safetensors") as tmp:                 # doctest: +SKIP
    ...     safetensors.torch.save_file(tensors, tmp)
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """The process umask (read by setting and restoring it; the lock keeps threads from racing on it)."""
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def default_file_mode() -> int:
    """The mode ``open(path, "w")`` gives a new file: ``0o666`` minus the umask."""
    return 0o666 & ~current_umask()


@contextlib.contextmanager
def atomic_path(path: str | Path, *, fsync: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block ends without error, it replaces ``path``.

    The writer inside the block creates or fills the temporary file (e.g. ``save_file(tensors, tmp)``).
    On success the file gets the umask's mode, is flushed to disk (``fsync``) and renamed onto ``path``; on any
    error (a full disk included) the temporary file is removed and the error propagates, ``path`` untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, default_file_mode())
        if fsync:
            with open(tmp, "rb") as handle:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_path`)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically (see :func:`atomic_path`)."""
    atomic_write_bytes(path, text.encode("utf-8"))
