"""An on-disk cache of frozen X-encoder features, so later epochs and later runs skip the backbone.

Entries are keyed by *what produced them*: the encoder id and revision, the preprocessing (image-processor
config, token selection, pooling) and the content hash of each image (its decoded pixels). A folder per
encoder key holds ``key.json`` (the key, readable) and shards ``shard-*.safetensors``, one tensor per
image named by its hash. Each shard is written to a temporary file and renamed into place, so a killed
run never leaves a partial shard; deleting the whole folder is always safe.

Example::

    >>> cache = FeatureCache.for_encoder(root, encoder, encoder_id="timm/...", revision="...")  # doctest: +SKIP
    >>> tokens = cache.get_or_compute(images, encoder)          # [N, T, D]; computed once, then read back
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import save_file
from tqdm.auto import tqdm

from jepa_core.atomic import atomic_path, atomic_write_bytes

if TYPE_CHECKING:
    from vljepa.encoders.x_encoder import XEncoder

logger = logging.getLogger(__name__)

CACHE_FORMAT_VERSION = 1
STORAGE_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def image_content_hash(image: Image.Image) -> str:
    """SHA-1 of an image's decoded pixels, mode and size (independent of file format or file name).

    Images should come from :func:`vljepa.data.images.decode_image`; a lazily opened file that turns out to be
    cut short raises :class:`~vljepa.data.images.BadInputError` naming the file, not a bare ``OSError``.
    """
    try:
        pixels = image.tobytes()
    except (OSError, SyntaxError, ValueError) as error:
        from vljepa.data.images import BadInputError

        where = getattr(image, "filename", "") or "an image given to the feature cache"
        raise BadInputError(str(where), "truncated", str(error) or type(error).__name__) from error
    digest = hashlib.sha1()
    digest.update(f"{image.mode}:{image.size[0]}x{image.size[1]}:".encode())
    digest.update(pixels)
    return digest.hexdigest()


def encoder_key(encoder: XEncoder, *, encoder_id: str, revision: str | None, storage_dtype: str) -> dict[str, Any]:
    """The cache key of an encoder: id, revision, preprocessing signature, storage dtype, format version."""
    return {
        "format_version": CACHE_FORMAT_VERSION,
        "encoder_id": encoder_id,
        "encoder_revision": revision,
        "preprocessing": encoder.preprocessing_signature(),
        "storage_dtype": storage_dtype,
    }


class FeatureCache:
    """Visual tokens ``[T, D]`` per image hash for one encoder key, stored in safetensors shards.

    Args:
        root: parent folder of all feature caches (e.g. ``~/.cache/jepa-hf/features``).
        key: the encoder key (see :func:`encoder_key`); its hash names the sub-folder.
        storage_dtype: ``float32``, ``float16`` (default; half the disk, ~1e-3 relative error) or ``bfloat16``.
        shard_size: entries per shard file.
    """

    def __init__(
        self, root: str | Path, key: dict[str, Any], *, storage_dtype: str = "float16", shard_size: int = 4096
    ) -> None:
        if storage_dtype not in STORAGE_DTYPES:
            raise ValueError(f"storage_dtype must be one of {sorted(STORAGE_DTYPES)}, got {storage_dtype!r}")
        self.key = key
        self.storage_dtype = storage_dtype
        self.shard_size = shard_size
        key_text = json.dumps(key, sort_keys=True, default=str)
        self.directory = Path(root).expanduser() / hashlib.sha256(key_text.encode()).hexdigest()[:20]
        self.directory.mkdir(parents=True, exist_ok=True)
        key_file = self.directory / "key.json"
        if not key_file.is_file():
            atomic_write_bytes(key_file, json.dumps(key, indent=2, sort_keys=True, default=str).encode())
        self._index: dict[str, Path] = {}
        self._memory: dict[str, torch.Tensor] = {}
        self._pending: dict[str, torch.Tensor] = {}
        self._lock = threading.Lock()
        self.refresh()

    @classmethod
    def for_encoder(
        cls, root: str | Path, encoder: XEncoder, *, encoder_id: str, revision: str | None,
        storage_dtype: str = "float16",
    ) -> FeatureCache:
        return cls(
            root, encoder_key(encoder, encoder_id=encoder_id, revision=revision, storage_dtype=storage_dtype),
            storage_dtype=storage_dtype,
        )

    # ------------------------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Re-read the shard index (e.g. after another process added shards)."""
        known = set(self._index.values())
        for shard in sorted(self.directory.glob("shard-*.safetensors")):
            if shard in known:
                continue
            with safe_open(str(shard), framework="pt") as handle:
                for name in handle.keys():  # noqa: SIM118  (a safetensors handle, not a dict)
                    self._index[name] = shard

    def __len__(self) -> int:
        return len(self._index) + len(self._pending)

    def __contains__(self, image_hash: str) -> bool:
        return image_hash in self._index or image_hash in self._pending

    def get(self, hashes: Sequence[str]) -> torch.Tensor:
        """``[N, T, D]`` cached features (float32) of image hashes that are all in the cache."""
        missing = [h for h in hashes if h not in self]
        if missing:
            raise KeyError(f"{len(missing)} image(s) are not in the feature cache {self.directory}, e.g. {missing[0]}")
        by_shard: dict[Path, list[str]] = {}
        for image_hash in set(hashes):
            if image_hash not in self._memory and image_hash not in self._pending:
                by_shard.setdefault(self._index[image_hash], []).append(image_hash)
        for shard, names in by_shard.items():
            with safe_open(str(shard), framework="pt") as handle:
                for name in names:
                    self._memory[name] = handle.get_tensor(name)
        rows = [self._pending[h] if h in self._pending else self._memory[h] for h in hashes]
        return torch.stack(rows).float()

    def put(self, hashes: Sequence[str], features: torch.Tensor) -> None:
        """Add features ``[N, T, D]``; written to disk by :meth:`flush` (automatically every shard_size)."""
        if features.shape[0] != len(hashes):
            raise ValueError(f"{len(hashes)} hashes for {features.shape[0]} feature rows")
        stored = features.detach().to("cpu", STORAGE_DTYPES[self.storage_dtype])
        for image_hash, row in zip(hashes, stored):
            if image_hash not in self._index:
                self._pending[image_hash] = row.clone()
        if len(self._pending) >= self.shard_size:
            self.flush()

    def flush(self) -> None:
        """Write pending features as a new shard (temporary file, then rename)."""
        with self._lock:
            if not self._pending:
                return
            name = f"shard-{time.time_ns()}-{os.getpid()}.safetensors"
            final = self.directory / name
            with atomic_path(final, fsync=False) as tmp:  # a lost shard is recomputed: no fsync needed
                save_file(dict(self._pending), str(tmp), metadata={"format": "pt"})
            for image_hash, row in self._pending.items():
                self._index[image_hash] = final
                self._memory[image_hash] = row
            logger.info("Feature cache: wrote %d entries to %s", len(self._pending), final)
            self._pending = {}

    # ------------------------------------------------------------------------------------------------
    def get_or_compute(
        self, images: Sequence[Image.Image], encoder: XEncoder, *, batch_size: int = 64,
        hashes: Sequence[str] | None = None, progress: bool = False,
    ) -> torch.Tensor:
        """``[N, T, D]`` features of ``images``; computes only the ones not cached yet.

        New features are kept in memory and written as a shard once ``shard_size`` accumulate or when
        :meth:`flush` is called (call it when done, e.g. after an evaluation).
        """
        hashes = list(hashes) if hashes is not None else [image_content_hash(image) for image in images]
        if len(hashes) != len(images):
            raise ValueError(f"{len(hashes)} hashes for {len(images)} images")
        todo: dict[str, Image.Image] = {}
        for image_hash, image in zip(hashes, images):
            if image_hash not in self and image_hash not in todo:
                todo[image_hash] = image
        if todo:
            self.compute(
                list(todo.values()), encoder, hashes=list(todo), batch_size=batch_size, progress=progress,
                flush=False,
            )  # fmt: skip
        return self.get(hashes)

    def compute(
        self, images: Sequence[Image.Image], encoder: XEncoder, *, hashes: Sequence[str], batch_size: int = 64,
        progress: bool = True, flush: bool = True,
    ) -> None:
        """Run the backbone on ``images`` (batched, no grad) and store their features (written if ``flush``)."""
        bar = tqdm(total=len(images), desc="X-encoder features", unit="img", disable=not progress)
        for start in range(0, len(images), batch_size):
            chunk = images[start : start + batch_size]
            pixels = encoder.preprocess(chunk)
            with torch.no_grad():
                features = encoder.tokens_from_pixels(pixels)
            self.put(hashes[start : start + batch_size], features)
            bar.update(len(chunk))
        bar.close()
        if flush:
            self.flush()
