"""The bad-input matrix: every kind of bad image under both policies, and the mode conversions."""

from __future__ import annotations

import io
import json
import struct
import zlib

import numpy as np
import PIL.Image
import pytest

from vljepa.data.images import (
    BadInputError,
    BadInputReport,
    ImageLoader,
    check_duplicate_ids,
    load_image,
    resolve_on_bad_input,
    to_rgb,
)


def _noise_image(size=(48, 32), seed=0) -> PIL.Image.Image:
    pixels = np.random.default_rng(seed).integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
    return PIL.Image.fromarray(pixels, mode="RGB")


def _encoded(image: PIL.Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims ``width`` x ``height`` (a decompression bomb's header)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)

    def chunk(kind: bytes, payload: bytes) -> bytes:
        body = kind + payload
        return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body))

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def _bad_input(kind: str, tmp_path):
    """(source, load_image kwargs, expected reason) for one kind of bad input."""
    if kind == "none":
        return None, {}, "missing"
    if kind == "empty_string":
        return "", {}, "missing"
    if kind == "empty_dict":
        return {"path": None, "bytes": None}, {}, "missing"
    if kind == "not_found":
        return str(tmp_path / "nope.jpg"), {}, "not_found"
    if kind == "empty_file":
        (tmp_path / "empty.png").write_bytes(b"")
        return str(tmp_path / "empty.png"), {}, "empty_file"
    if kind == "empty_bytes":
        return {"path": None, "bytes": b""}, {}, "missing"
    if kind == "not_an_image":
        (tmp_path / "text.png").write_text("this is not a picture\n" * 10)
        return str(tmp_path / "text.png"), {}, "unreadable"
    if kind in ("truncated_jpeg", "truncated_png"):
        fmt = "JPEG" if kind == "truncated_jpeg" else "PNG"
        data = _encoded(_noise_image((96, 96)), fmt)
        path = tmp_path / f"cut.{fmt.lower()}"
        path.write_bytes(data[: len(data) // 2])
        return str(path), {}, "truncated"
    if kind == "too_large_for_limit":
        return _encoded(_noise_image((100, 100)), "PNG"), {"max_pixels": 5_000}, "too_large"
    if kind == "bomb_header_default_limit":  # 100 M pixels: above DEFAULT_MAX_PIXELS, below Pillow's limit
        return _png_header_only(10_000, 10_000), {}, "too_large"
    if kind == "bomb_header_pillow_limit":  # 900 M pixels: Pillow's own DecompressionBombError
        return _png_header_only(30_000, 30_000), {"max_pixels": 10**12}, "too_large"
    if kind == "bad_mode":
        return PIL.Image.new("La", (4, 4)), {}, "bad_mode"
    raise AssertionError(kind)


BAD_KINDS = [
    "none",
    "empty_string",
    "empty_dict",
    "not_found",
    "empty_file",
    "empty_bytes",
    "not_an_image",
    "truncated_jpeg",
    "truncated_png",
    "too_large_for_limit",
    "bomb_header_default_limit",
    "bomb_header_pillow_limit",
    "bad_mode",
]


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_bad_input_raises_under_error_policy(kind, tmp_path):
    source, kwargs, reason = _bad_input(kind, tmp_path)
    with pytest.raises(BadInputError) as caught:
        load_image(source, context=f"demo row 3 ({kind})", **kwargs)
    assert caught.value.reason == reason
    assert f"demo row 3 ({kind})" in str(caught.value) and reason in str(caught.value)
    loader = ImageLoader(on_bad_input="error", **kwargs)
    with pytest.raises(BadInputError, match=reason):
        loader(source)


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_bad_input_is_skipped_and_counted_under_skip_policy(kind, tmp_path):
    source, kwargs, reason = _bad_input(kind, tmp_path)
    report = BadInputReport(max_examples=1)
    loader = ImageLoader(on_bad_input="skip", report=report, **kwargs)
    assert loader(source, context="row 9") is None
    assert loader(source, context="row 10") is None
    assert report.counts == {reason: 2} and report.total == 2
    assert report.examples == [{"where": "row 9", "reason": reason, "detail": report.examples[0]["detail"]}]
    written = json.loads(report.write(tmp_path / "run").read_text())
    assert written["counts"] == {reason: 2} and written["total"] == 2
    assert reason in report.summary()


def test_error_message_names_the_path_without_context(tmp_path):
    missing = tmp_path / "lost" / "image_0001.jpg"
    with pytest.raises(BadInputError, match="image_0001.jpg: not_found"):
        load_image(str(missing))


def test_bad_exif_is_reported(monkeypatch):
    def broken_transpose(image):
        raise struct.error("bad IFD")

    monkeypatch.setattr("PIL.ImageOps.exif_transpose", broken_transpose)
    with pytest.raises(BadInputError) as caught:
        load_image(_encoded(_noise_image(), "JPEG"))
    assert caught.value.reason == "bad_exif"


def _rgba_half_transparent() -> PIL.Image.Image:
    image = PIL.Image.new("RGBA", (4, 2), (255, 0, 0, 255))
    for x in range(2):
        for y in range(2):
            image.putpixel((x, y), (0, 0, 255, 0))  # fully transparent blue -> white
    return image


def _palette_with_transparency() -> PIL.Image.Image:
    image = PIL.Image.new("P", (4, 2), 0)
    image.putpalette([0, 0, 255] + [255, 0, 0] + [0, 0, 0] * 254)
    for x in range(2, 4):
        for y in range(2):
            image.putpixel((x, y), 1)
    image.info["transparency"] = 0
    return image


@pytest.mark.parametrize(
    ("mode_case", "expected_left", "expected_right"),
    [
        ("rgba", (255, 255, 255), (255, 0, 0)),
        ("la", (255, 255, 255), (76, 76, 76)),
        ("p_transparent", (255, 255, 255), (255, 0, 0)),
        ("cmyk", (255, 0, 0), (255, 0, 0)),
        ("l", (128, 128, 128), (128, 128, 128)),
        ("i16", (128, 128, 128), (255, 255, 255)),
        ("one_bit", (0, 0, 0), (255, 255, 255)),
    ],
)
def test_modes_become_rgb_through_png_round_trip(mode_case, expected_left, expected_right):
    if mode_case == "rgba":
        image = _rgba_half_transparent()
    elif mode_case == "la":
        image = _rgba_half_transparent().convert("LA")
    elif mode_case == "p_transparent":
        image = _palette_with_transparency()
    elif mode_case == "cmyk":
        image = PIL.Image.new("CMYK", (4, 2), (0, 255, 255, 0))
    elif mode_case == "l":
        image = PIL.Image.new("L", (4, 2), 128)
    elif mode_case == "i16":
        values = np.full((2, 4), 65535, dtype=np.uint16)
        values[:, :2] = 128 * 257
        image = PIL.Image.fromarray(values)
        assert image.mode == "I;16"
    else:
        image = PIL.Image.new("1", (4, 2), 0)
        for y in range(2):
            for x in range(2, 4):
                image.putpixel((x, y), 1)
    fmt = "JPEG" if mode_case == "cmyk" else "PNG"
    loaded = load_image(_encoded(image, fmt, **({"quality": 100} if fmt == "JPEG" else {})))
    assert loaded.mode == "RGB" and loaded.size == (4, 2)
    left, right = loaded.getpixel((0, 0)), loaded.getpixel((3, 1))
    tolerance = 3 if fmt == "JPEG" else 0
    assert np.abs(np.subtract(left, expected_left)).max() <= tolerance, left
    assert np.abs(np.subtract(right, expected_right)).max() <= tolerance, right


def test_exif_rotation_is_applied():
    image = PIL.Image.new("RGB", (40, 20), (0, 200, 0))
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    loaded = load_image(_encoded(image, "JPEG", exif=exif.tobytes()))
    assert loaded.size == (20, 40)


@pytest.mark.parametrize("as_kind", ["path", "bytes", "dict_path", "dict_bytes", "pil"])
def test_every_source_kind_loads(as_kind, tmp_path):
    image = _noise_image()
    data = _encoded(image, "PNG")
    path = tmp_path / "ok.png"
    path.write_bytes(data)
    source = {
        "path": str(path),
        "bytes": data,
        "dict_path": {"path": str(path), "bytes": None},
        "dict_bytes": {"path": None, "bytes": data},
        "pil": image,
    }[as_kind]
    loaded = load_image(source)
    assert np.array_equal(np.asarray(loaded), np.asarray(image))


def test_to_rgb_float_mode_scales_unit_range():
    image = PIL.Image.fromarray(np.full((2, 2), 0.5, dtype=np.float32), mode="F")
    assert to_rgb(image).getpixel((0, 0)) == (128, 128, 128)


@pytest.mark.parametrize("policy", ["error", "skip"])
def test_duplicate_ids_under_both_policies(policy):
    ids = ["a", "b", "a", "c", "b"]
    report = BadInputReport()
    if policy == "error":
        with pytest.raises(BadInputError, match=r"pairs.jsonl row 2: duplicate_id.*question_id='a'.*row 0"):
            check_duplicate_ids(ids, source="pairs.jsonl", field_name="question_id", on_bad_input=policy)
        return
    keep = check_duplicate_ids(
        ids, source="pairs.jsonl", field_name="question_id", on_bad_input=policy, report=report
    )
    assert keep == [0, 1, 3]
    assert report.counts == {"duplicate_id": 2}


@pytest.mark.parametrize(
    ("given", "split", "expected"),
    [(None, "train", "skip"), (None, "test", "error"), ("error", "train", "error")],
)
def test_policy_defaults_by_split(given, split, expected):
    assert resolve_on_bad_input(given, split) == expected


def test_invalid_policy_is_rejected():
    with pytest.raises(ValueError, match="on_bad_input"):
        ImageLoader(on_bad_input="ignore")


@pytest.mark.parametrize("policy", ["error", "skip"])
def test_collator_path_over_a_dataset_with_a_broken_file(policy, tmp_path):
    import datasets

    from vljepa.data import CAPTION_FEATURES, undecoded_images

    good, broken = tmp_path / "good.png", tmp_path / "broken.png"
    good.write_bytes(_encoded(_noise_image(), "PNG"))
    broken.write_bytes(_encoded(_noise_image(), "PNG")[:100])
    ds = datasets.Dataset.from_dict(
        {"image": [str(good), str(broken)], "captions": [["a"], ["b"]], "image_id": ["0", "1"]},
        features=CAPTION_FEATURES,
    )
    loader = ImageLoader(on_bad_input=policy)
    rows = undecoded_images(ds)
    if policy == "error":
        with pytest.raises(BadInputError, match="image_id 1: truncated"):
            [loader(row["image"], context=f"image_id {row['image_id']}") for row in rows]
        return
    images = [loader(row["image"], context=f"image_id {row['image_id']}") for row in rows]
    assert images[0].mode == "RGB" and images[1] is None
    assert loader.report.counts == {"truncated": 1}
