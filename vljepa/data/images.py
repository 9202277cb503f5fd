"""Robust image loading and the bad-input policy shared by every VL-JEPA data source.

``load_image`` turns any image reference a dataset row may hold (path, bytes, ``{"path", "bytes"}``
dict as stored by ``datasets.Image``, or a ``PIL.Image``) into an RGB ``PIL.Image``, or raises
:class:`BadInputError` naming the file/row and the reason:

============  ===================================================================
reason        when
============  ===================================================================
missing       the field is None / "" / an empty dict (nothing to load)
not_found     the path does not exist
empty_file    the file or byte string has zero length
unreadable    not an image Pillow can identify
truncated     the header is fine but the pixel data is cut short or corrupt
too_large     more pixels than ``max_pixels`` (decompression-bomb guard; checked
              from the header, before any pixel is decoded)
bad_exif      the EXIF orientation cannot be applied
bad_mode      a pixel mode that cannot be converted to RGB
duplicate_id  an id that an earlier row already used (see ``check_duplicate_ids``)
============  ===================================================================

Colour handling: EXIF orientation is applied (``ImageOps.exif_transpose``); images with transparency
(RGBA, LA, PA, P or L/RGB with a transparency key) are composited on white; CMYK, P, L, 1, YCbCr go
through Pillow's ``convert("RGB")``; 16-bit (``I;16*``) is scaled by 1/257; ``I`` (32-bit) is used as
is when its values fit 0..255, scaled by 1/257 when they fit 0..65535 and min-max scaled otherwise;
``F`` is scaled by 255 when its values fit 0..1 and min-max scaled otherwise.

Resizing and normalisation are NOT done here: the model uses its X-encoder's own image processor.

Policy ``on_bad_input``: ``"error"`` (default for evaluation) raises; ``"skip"`` (default for training)
drops the item and records it in a :class:`BadInputReport`, which keeps counts by reason and the first
N reasons, logs a summary and writes ``bad_inputs.json`` into a run directory.

Example:
    >>> from vljepa.data.images import ImageLoader, BadInputReport
    >>> report = BadInputReport()
    >>> loader = ImageLoader(on_bad_input="skip", report=report)
    >>> loader("does-not-exist.png", context="row 3") is None
    True
    >>> dict(report.counts)
    {'not_found': 1}
"""

from __future__ import annotations

import io
import logging
import struct
import warnings
from collections import Counter
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import PIL.Image
import PIL.ImageOps

logger = logging.getLogger(__name__)

BadInputPolicy = Literal["error", "skip"]
BAD_INPUT_POLICIES: tuple[str, ...] = ("error", "skip")
BAD_INPUT_REASONS: tuple[str, ...] = (
    "missing",
    "not_found",
    "empty_file",
    "unreadable",
    "truncated",
    "too_large",
    "bad_exif",
    "bad_mode",
    "duplicate_id",
)
# 8192 x 8192: far above any training resolution, far below what exhausts memory when decoded.
DEFAULT_MAX_PIXELS = 8192 * 8192

_HINTS = {
    "missing": "fill the field or drop the row",
    "not_found": "check the image root / file name, or pass on_bad_input='skip'",
    "empty_file": "re-download or remove the file",
    "unreadable": "the file is not an image Pillow can read; re-download or remove it",
    "truncated": "the file is cut short or corrupt; re-download it",
    "too_large": "raise max_pixels if the image is genuine, or remove it",
    "bad_exif": "strip the EXIF block (e.g. re-save the image)",
    "bad_mode": "convert the image to RGB beforehand",
    "duplicate_id": "give each row a unique id, or drop the duplicate",
}


class BadInputError(ValueError):
    """An input that cannot be used; ``where`` names the file or row, ``reason`` is in BAD_INPUT_REASONS."""

    def __init__(self, where: str, reason: str, detail: str = "") -> None:
        if reason not in BAD_INPUT_REASONS:
            raise ValueError(f"unknown bad-input reason {reason!r}; expected one of {BAD_INPUT_REASONS}")
        self.where = where
        self.reason = reason
        self.detail = detail
        text = f"{where}: {reason}" + (f" ({detail})" if detail else "")
        super().__init__(f"{text}; {_HINTS[reason]}")


def check_policy(on_bad_input: str) -> str:
    if on_bad_input not in BAD_INPUT_POLICIES:
        raise ValueError(f"on_bad_input must be one of {BAD_INPUT_POLICIES}, got {on_bad_input!r}")
    return on_bad_input


def resolve_on_bad_input(on_bad_input: str | None, split: str) -> str:
    """``on_bad_input`` if given, else ``"skip"`` for the ``train`` split and ``"error"`` for any other."""
    if on_bad_input is None:
        return "skip" if split == "train" else "error"
    return check_policy(on_bad_input)


@dataclass
class BadInputReport:
    """Counts of skipped inputs by reason, and the first ``max_examples`` of them in full.

    Not shared across processes: with ``datasets.map(num_proc>1)`` each worker counts its own.
    """

    max_examples: int = field(default=20, metadata={"help": "How many skipped inputs to keep in full."})
    counts: Counter = field(default_factory=Counter, metadata={"help": "Skipped inputs by reason."})
    examples: list[dict[str, str]] = field(
        default_factory=list, metadata={"help": "The first skipped inputs."}
    )

    def __post_init__(self) -> None:
        if self.max_examples < 0:
            raise ValueError(f"max_examples must be >= 0, got {self.max_examples}")

    def record(self, error: BadInputError) -> None:
        self.counts[error.reason] += 1
        if len(self.examples) < self.max_examples:
            self.examples.append({"where": error.where, "reason": error.reason, "detail": error.detail})

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def summary(self) -> str:
        if not self.total:
            return "no bad inputs"
        by_reason = ", ".join(f"{reason}: {count}" for reason, count in sorted(self.counts.items()))
        return f"skipped {self.total} bad input(s) ({by_reason})"

    def log_summary(self, level: int = logging.WARNING) -> None:
        logger.log(level if self.total else logging.INFO, "%s", self.summary())

    def to_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "counts": dict(sorted(self.counts.items())),
            "examples": list(self.examples),
        }

    def write(self, run_dir: str | Path) -> Path:
        """Write ``bad_inputs.json`` into ``run_dir`` (atomically) and return its path."""
        from jepa_core.rundir import write_json

        path = Path(run_dir) / "bad_inputs.json"
        write_json(path, self.to_dict())
        return path


def handle_bad_input(error: BadInputError, *, on_bad_input: str, report: BadInputReport | None) -> None:
    """Raise ``error`` under ``"error"``; under ``"skip"`` record it in ``report`` (if any) and return."""
    if check_policy(on_bad_input) == "error":
        raise error
    if report is not None:
        report.record(error)
    logger.debug("skipping bad input: %s", error)


def _describe(source: Any) -> str:
    if isinstance(source, (str, Path)):
        return str(source)
    if isinstance(source, Mapping) and source.get("path"):
        return str(source["path"])
    if isinstance(source, (bytes, bytearray)) or (isinstance(source, Mapping) and source.get("bytes")):
        return "<image bytes>"
    return f"<{type(source).__name__}>"


def _open(source: Any, where: str) -> PIL.Image.Image:
    """Open ``source`` lazily (header only), mapping every failure to a BadInputError."""
    if isinstance(source, Mapping):
        data, path = source.get("bytes"), source.get("path")
        source = data if data else path
    if source is None or (isinstance(source, str) and not source.strip()):
        raise BadInputError(where, "missing", "no image path or bytes")
    if isinstance(source, (bytes, bytearray)):
        if not source:
            raise BadInputError(where, "empty_file", "zero bytes")
        stream: Any = io.BytesIO(bytes(source))
    elif isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise BadInputError(where, "not_found", f"no file at {path}")
        if path.stat().st_size == 0:
            raise BadInputError(where, "empty_file", f"{path} has zero bytes")
        stream = path  # Pillow reads only the header now and closes the file after load()
    else:
        raise BadInputError(
            where, "missing", f"expected a path, bytes or PIL image, got {type(source).__name__}"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PIL.Image.DecompressionBombWarning)  # our own max_pixels guard
            return PIL.Image.open(stream)
    except PIL.Image.DecompressionBombError as error:
        raise BadInputError(where, "too_large", str(error)) from error
    except (PIL.UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise BadInputError(where, "unreadable", str(error) or type(error).__name__) from error


def load_image(
    source: Any, *, max_pixels: int = DEFAULT_MAX_PIXELS, context: str | None = None
) -> PIL.Image.Image:
    """Load ``source`` as an RGB image (EXIF orientation applied), or raise :class:`BadInputError`.

    Args:
        source: a path, bytes, a ``{"path", "bytes"}`` dict (``datasets.Image(decode=False)`` storage) or
            a ``PIL.Image``.
        max_pixels: images with more pixels (width * height) are rejected from the header alone. Pillow's
            own bomb check (``2 * PIL.Image.MAX_IMAGE_PIXELS``) still applies above that.
        context: what to call the input in errors (e.g. ``"vqav2 val row 12 (question 4711)"``);
            defaults to the path.
    """
    if max_pixels <= 0:
        raise ValueError(f"max_pixels must be positive, got {max_pixels}")
    where = context or _describe(source)
    opened_here = not isinstance(source, PIL.Image.Image)
    image = _open(source, where) if opened_here else source
    try:
        return _decode_to_rgb(image, where, max_pixels)
    finally:
        if opened_here:
            image.close()


def _decode_to_rgb(image: PIL.Image.Image, where: str, max_pixels: int) -> PIL.Image.Image:
    width, height = image.size
    if width * height > max_pixels:
        raise BadInputError(where, "too_large", f"{width}x{height} = {width * height} pixels > {max_pixels}")
    if width == 0 or height == 0:
        raise BadInputError(where, "unreadable", f"image has size {width}x{height}")
    try:
        image.load()
    except (OSError, SyntaxError, ValueError, EOFError, struct.error) as error:
        raise BadInputError(where, "truncated", str(error) or type(error).__name__) from error
    try:
        transposed = PIL.ImageOps.exif_transpose(image)
    except (OSError, SyntaxError, ValueError, KeyError, TypeError, struct.error) as error:
        raise BadInputError(where, "bad_exif", str(error) or type(error).__name__) from error
    try:
        rgb = to_rgb(transposed)
    except (ValueError, OSError) as error:
        raise BadInputError(where, "bad_mode", f"mode {transposed.mode}: {error}") from error
    # A fresh copy owns its pixels, so closing the opened file cannot invalidate the result.
    return rgb.copy() if rgb is image else rgb


def _has_transparency(image: PIL.Image.Image) -> bool:
    return image.mode in ("RGBA", "RGBa", "LA", "La", "PA") or "transparency" in image.info


def _high_depth_to_rgb(image: PIL.Image.Image) -> PIL.Image.Image:
    values = np.asarray(image).astype(np.float64)
    low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
    if image.mode.startswith("I;16"):
        scaled = values / 257.0
    elif image.mode == "F" and low >= 0.0 and high <= 1.0:
        scaled = values * 255.0
    elif image.mode == "I" and low >= 0 and high <= 255:
        scaled = values
    elif image.mode == "I" and low >= 0 and high <= 65535:
        scaled = values / 257.0
    else:
        scaled = (values - low) * (255.0 / (high - low)) if high > low else np.zeros_like(values)
    gray = PIL.Image.fromarray(np.clip(np.rint(scaled), 0, 255).astype(np.uint8), mode="L")
    return gray.convert("RGB")


def to_rgb(image: PIL.Image.Image) -> PIL.Image.Image:
    """Convert any Pillow mode to RGB; transparent pixels are composited on white (see module doc)."""
    if image.mode == "RGB" and "transparency" not in image.info:
        return image
    if image.mode in ("I", "F") or image.mode.startswith("I;16"):
        return _high_depth_to_rgb(image)
    if _has_transparency(image):
        rgba = image.convert("RGBA")
        background = PIL.Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return PIL.Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def decode_image(
    source: Any,
    *,
    on_bad_input: str = "error",
    report: BadInputReport | None = None,
    context: str | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> PIL.Image.Image | None:
    """THE image decode of VL-JEPA (training, feature cache, evaluation runners, ``vljepa decode``).

    :func:`load_image` under the bad-input policy: the RGB image, or for a bad input either a
    :class:`BadInputError` naming ``context`` (or the file) with what to do (``"error"``), or ``None`` after
    recording it in ``report`` (``"skip"``).
    """
    try:
        return load_image(source, max_pixels=max_pixels, context=context)
    except BadInputError as error:
        handle_bad_input(error, on_bad_input=on_bad_input, report=report)
        return None


def image_context(where: str, source: Any) -> str:
    """``"<where> (<file>)"`` for error messages and skip records: the row and, when known, the file."""
    described = _describe(source)
    return where if described.startswith("<") else f"{where} ({described})"


def encode_png(image: PIL.Image.Image) -> bytes:
    """PNG bytes of ``image``; deterministic for identical pixels (no timestamp or text chunks)."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=6)
    return buffer.getvalue()


@dataclass
class ImageLoader:
    """``load_image`` with a fixed policy: returns None for a bad input under ``"skip"`` (and counts it).

    Use it in collators: ``images = [loader(row["image"], context=row["image_id"]) for row in batch]``.
    """

    on_bad_input: BadInputPolicy = field(default="error", metadata={"help": "'error' raises; 'skip' drops."})
    max_pixels: int = field(default=DEFAULT_MAX_PIXELS, metadata={"help": "Reject images above this size."})
    report: BadInputReport = field(
        default_factory=BadInputReport, metadata={"help": "Where skips are counted."}
    )

    def __post_init__(self) -> None:
        check_policy(self.on_bad_input)
        if self.max_pixels <= 0:
            raise ValueError(f"max_pixels must be positive, got {self.max_pixels}")

    def __call__(self, source: Any, *, context: str | None = None) -> PIL.Image.Image | None:
        return decode_image(
            source, on_bad_input=self.on_bad_input, report=self.report, context=context, max_pixels=self.max_pixels
        )


def check_duplicate_ids(
    ids: Iterable[Hashable],
    *,
    source: str,
    field_name: str,
    on_bad_input: str,
    report: BadInputReport | None = None,
) -> list[int]:
    """Indices of the rows to keep: the first row of each id; later repeats raise or are skipped.

    ``source`` names the file and ``field_name`` the id field, for the error message.
    """
    first_row: dict[Hashable, int] = {}
    keep: list[int] = []
    for row, value in enumerate(ids):
        if value in first_row:
            error = BadInputError(
                f"{source} row {row}",
                "duplicate_id",
                f"{field_name}={value!r} was already used by row {first_row[value]}",
            )
            handle_bad_input(error, on_bad_input=on_bad_input, report=report)
            continue
        first_row[value] = row
        keep.append(row)
    return keep
