"""Arrow caches of built datasets under ``$JEPA_CACHE_DIR/datasets`` (default ``~/.cache/jepa-hf``).

A cache entry is one Arrow file named by a key that states what produced it (data package version,
generator config hash, schema version). Entries are written to a temporary file and renamed into
place, so a crash never leaves half an entry; deleting the folder is always safe.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import datasets
import pyarrow as pa

from jepa_core.atomic import atomic_path

logger = logging.getLogger(__name__)

# Bump when a builder's output changes for the same inputs, so old cache entries are not reused.
SCHEMA_VERSION = "1"


def dataset_cache_dir(cache_dir: str | Path | None = None) -> Path:
    """Folder holding cached datasets: ``<cache_dir or $JEPA_CACHE_DIR or ~/.cache/jepa-hf>/datasets``."""
    # Imported here: jepa_core pulls in torch, which reading data does not otherwise need.
    from jepa_core.resolver import jepa_cache_dir

    return jepa_cache_dir(cache_dir) / "datasets"


def config_fingerprint(payload: Any, length: int = 16) -> str:
    """A short stable hash of a JSON-serialisable ``payload`` (e.g. a generator config as a dict)."""
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


def _safe_key(key: str) -> str:
    if not key or not re.fullmatch(r"[A-Za-z0-9._=+-]+", key):
        raise ValueError(f"cache key {key!r} must be non-empty and use only letters, digits and . _ = + -")
    return key


def cached_dataset(
    key: str,
    build: Callable[[], datasets.Dataset],
    *,
    split: str | None = None,
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
    still_valid: Callable[[datasets.Dataset], bool] | None = None,
) -> datasets.Dataset:
    """Return the dataset cached under ``key``, building and saving it with ``build()`` on a miss.

    The entry is one Arrow stream file, ``<cache>/datasets/<key>-v<SCHEMA_VERSION>.arrow``, holding the
    table as built (image columns keep their paths; bytes are not embedded), and is memory-mapped on
    load. With ``use_cache=False`` the dataset is built in memory and nothing is read or written.
    ``still_valid(dataset)`` is asked on a hit (e.g. "do the image files it points to still exist?");
    False rebuilds the entry.
    """
    if not use_cache:
        return build()
    target = dataset_cache_dir(cache_dir) / f"{_safe_key(key)}-v{SCHEMA_VERSION}.arrow"
    if target.is_file():
        cached = datasets.Dataset.from_file(str(target), split=split)
        if still_valid is None or still_valid(cached):
            logger.debug("dataset cache hit: %s", target)
            return cached
        logger.info("dataset cache entry %s is stale; rebuilding it", target)
    dataset = build()
    if dataset._indices is not None:  # a select()/filter() view: write the rows it shows, not the parent
        dataset = dataset.flatten_indices()
    table = dataset.data.table
    with (
        atomic_path(target) as staging,  # the umask's mode, like any file the user writes
        pa.OSFile(str(staging), "wb") as sink,
        pa.ipc.new_stream(sink, table.schema) as writer,
    ):
        writer.write_table(table)
    logger.info("cached dataset %s (%d rows) at %s", key, len(dataset), target)
    return datasets.Dataset.from_file(str(target), split=split)
