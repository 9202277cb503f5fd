"""The bad and unusual image files of issue 15, written into a folder, for the tests of every decode path.

Bad (skipped or refused): a truncated PNG, a zero-byte file, a text file named ``.jpg``, a decompression bomb
(a real 1-bit PNG of 9000 x 9000 = 81 M pixels, ~10 KB on disk, above the 67 M pixel guard). Unusual but good
(decoded to RGB): a CMYK JPEG, a 16-bit grey PNG, a JPEG whose EXIF orientation rotates it by 90 degrees.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

BAD = {"truncated.png": "truncated", "empty.png": "empty_file", "text.jpg": "unreadable", "bomb.png": "too_large"}
UNUSUAL = ("cmyk.jpg", "gray16.png", "exif_rotated.jpg")


def write_bad_images(folder: Path) -> dict[str, Path]:
    """Write the seven files into ``folder``; returns name -> path."""
    folder.mkdir(parents=True, exist_ok=True)
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 255, (32, 48, 3), dtype=np.uint8))
    buffer = io.BytesIO()
    noise.save(buffer, format="PNG")
    (folder / "truncated.png").write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    (folder / "empty.png").write_bytes(b"")
    (folder / "text.jpg").write_text("this is a text file, not a JPEG\n")
    Image.new("1", (9000, 9000)).save(folder / "bomb.png")
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(folder / "cmyk.jpg")  # red in CMYK
    Image.fromarray(np.full((16, 16), 65535, dtype=np.uint16)).save(folder / "gray16.png")  # 16-bit white
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    Image.new("RGB", (40, 20), "blue").save(folder / "exif_rotated.jpg", exif=exif.tobytes())
    return {path.name: path for path in folder.iterdir()}


def check_unusual(name: str, image: Image.Image) -> None:
    """What the decode of each unusual-but-good file must give."""
    assert image.mode == "RGB", name
    if name == "exif_rotated.jpg":
        assert image.size == (20, 40)  # the EXIF rotation was applied
    if name == "gray16.png":
        assert image.getpixel((0, 0)) == (255, 255, 255)  # 65535 scaled to 255, not clipped garbage
    if name == "cmyk.jpg":
        red, green, blue = image.getpixel((8, 8))
        assert red > 200 and green < 60 and blue < 60
