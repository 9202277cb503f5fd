"""A minimal reader for GGUF files: scalar metadata, the tensor table, and tensors as float32 arrays.

``gguf.GGUFReader`` builds a numpy view for every element of every metadata array; for a 49k-token
vocabulary and its merges that takes 10-30 s on a small CPU, longer than everything else in a conversion.
This reader walks the same layout (GGUF v2/v3, little-endian) with ``struct`` and skips the string arrays it
is not asked for. Common types are dequantized here, vectorised; others by ``gguf.quants.dequantize``.

Layout: ``b"GGUF"``, version (u32), tensor count (u64), metadata count (u64); metadata entries
``key (string), type (u32), value``; tensor infos ``name, n_dims (u32), dims (u64 x n_dims, fastest first),
ggml type (u32), offset (u64)``; then the tensor data, aligned to ``general.alignment`` (default 32).
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

_SCALAR_FORMATS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q",
                   12: "<d"}
_STRING, _ARRAY = 8, 9
_DEFAULT_ALIGNMENT = 32
_SUPPORTED_VERSIONS = (2, 3)


@dataclass(frozen=True)
class GGUFTensorInfo:
    """One entry of the tensor table; ``shape`` is in PyTorch order (slowest dimension first)."""

    name: str
    shape: tuple[int, ...]
    ggml_type: int
    offset: int


class GGUFFile:
    """Metadata and tensors of a GGUF file, memory-mapped.

    ``metadata`` maps keys to scalars and strings; arrays of numbers become lists, arrays of strings become
    their length unless their key is in ``string_arrays``. Use as a context manager to close the mapping.
    """

    def __init__(self, path: str | Path, *, string_arrays: tuple[str, ...] = ()) -> None:
        self.path = Path(path)
        self._handle = open(self.path, "rb")  # noqa: SIM115  (held open for the mapping; see close)
        self._map = mmap.mmap(self._handle.fileno(), 0, access=mmap.ACCESS_READ)
        if self._map[:4] != b"GGUF":
            self.close()
            raise ValueError(f"{self.path} is not a GGUF file (no GGUF magic bytes)")
        version, tensor_count, metadata_count = struct.unpack_from("<IQQ", self._map, 4)
        if version not in _SUPPORTED_VERSIONS:
            self.close()
            raise ValueError(f"{self.path} is GGUF version {version}; this reader handles {_SUPPORTED_VERSIONS}")
        position = 24
        self.metadata: dict[str, Any] = {}
        for _ in range(metadata_count):
            key, position = self._string(position)
            (value_type,) = struct.unpack_from("<I", self._map, position)
            self.metadata[key], position = self._value(position + 4, value_type, key in string_arrays)
        self.tensors: list[GGUFTensorInfo] = []
        for _ in range(tensor_count):
            name, position = self._string(position)
            (dims_count,) = struct.unpack_from("<I", self._map, position)
            dims = struct.unpack_from(f"<{dims_count}Q", self._map, position + 4)
            ggml_type, offset = struct.unpack_from("<IQ", self._map, position + 4 + 8 * dims_count)
            position += 4 + 8 * dims_count + 12
            self.tensors.append(GGUFTensorInfo(name, tuple(int(d) for d in reversed(dims)), ggml_type, offset))
        alignment = int(self.metadata.get("general.alignment", _DEFAULT_ALIGNMENT))
        self.data_start = (position + alignment - 1) // alignment * alignment

    def __enter__(self) -> GGUFFile:  # noqa: PYI034  (typing.Self needs Python 3.11)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        if not self._map.closed:
            self._map.close()
        self._handle.close()

    def _string(self, position: int) -> tuple[str, int]:
        (length,) = struct.unpack_from("<Q", self._map, position)
        start = position + 8
        return self._map[start : start + length].decode("utf-8"), start + length

    def _value(self, position: int, value_type: int, keep_strings: bool) -> tuple[Any, int]:
        if value_type in _SCALAR_FORMATS:
            fmt = _SCALAR_FORMATS[value_type]
            return struct.unpack_from(fmt, self._map, position)[0], position + struct.calcsize(fmt)
        if value_type == _STRING:
            return self._string(position)
        if value_type != _ARRAY:
            raise ValueError(f"{self.path}: unknown GGUF metadata type {value_type} at byte {position}")
        element_type, count = struct.unpack_from("<IQ", self._map, position)
        position += 12
        if element_type in _SCALAR_FORMATS:
            fmt = _SCALAR_FORMATS[element_type]
            values = struct.unpack_from(f"<{count}{fmt[1:]}", self._map, position)
            return list(values), position + count * struct.calcsize(fmt)
        if element_type != _STRING:
            raise ValueError(f"{self.path}: GGUF arrays of type {element_type} are not supported")
        strings = []
        for _ in range(count):
            if keep_strings:
                text, position = self._string(position)
                strings.append(text)
            else:
                (length,) = struct.unpack_from("<Q", self._map, position)
                position += 8 + length
        return (strings if keep_strings else count), position

    def dequantize(self, info: GGUFTensorInfo) -> np.ndarray:
        """The tensor as a float32 array of ``info.shape`` (a copy, independent of the file)."""
        import gguf

        quant_type = gguf.GGMLQuantizationType(info.ggml_type)
        block_size, block_bytes = gguf.GGML_QUANT_SIZES[quant_type]
        row_length = info.shape[-1]
        if row_length % block_size:
            raise ValueError(
                f"{self.path}: tensor {info.name} rows of {row_length} are not whole {quant_type.name} blocks"
            )
        rows = int(np.prod(info.shape[:-1], dtype=np.int64))
        row_bytes = row_length // block_size * block_bytes
        raw = np.frombuffer(self._map, dtype=np.uint8, count=rows * row_bytes, offset=self.data_start + info.offset)
        values = dequantize_blocks(raw.reshape(rows, row_bytes), quant_type)
        return values.reshape(info.shape)


def dequantize_blocks(raw: np.ndarray, quant_type: Any) -> np.ndarray:
    """Dequantize ``raw`` (uint8, ``(rows, row_bytes)``) of ggml type ``quant_type`` to float32 ``(rows, n)``.

    F32, F16, Q8_0 and Q4_1 are vectorised over the whole tensor here (gguf's own dequantizer works in row
    groups and is ~10x slower on them); other types go to ``gguf.quants.dequantize``. Both compute
    ``scale * q (+ min)`` in float32, so the results are identical (a unit test checks it).
    """
    import gguf

    types = gguf.GGMLQuantizationType
    rows = raw.shape[0]
    if quant_type == types.F32:
        return raw.view(np.float32).copy()
    if quant_type == types.F16:
        return raw.view(np.float16).astype(np.float32)
    if quant_type == types.Q8_0:  # blocks of 32: float16 scale, 32 int8
        blocks = raw.reshape(-1, 34)
        scale = blocks[:, :2].copy().view(np.float16).astype(np.float32)
        quants = blocks[:, 2:].view(np.int8).astype(np.float32)
        return (scale * quants).reshape(rows, -1)
    if quant_type == types.Q4_1:  # blocks of 32: float16 scale, float16 min, 16 bytes of two 4-bit values
        blocks = raw.reshape(-1, 20)
        scale = blocks[:, 0:2].copy().view(np.float16).astype(np.float32)
        minimum = blocks[:, 2:4].copy().view(np.float16).astype(np.float32)
        packed = blocks[:, 4:]
        quants = np.concatenate([packed & 0x0F, packed >> 4], axis=1).astype(np.float32)
        return (scale * quants + minimum).reshape(rows, -1)
    # A plain in-memory copy: gguf's dequantizer is twice as fast on it as on a memory map.
    return np.asarray(gguf.quants.dequantize(raw.copy(), quant_type), dtype=np.float32)
