"""Procedural scenes: determinism, held-out compositions, captions and answers that match the pixels."""

from __future__ import annotations

import re
from collections import Counter

import datasets
import numpy as np
import pytest

from jepa_core.atomic import default_file_mode
from vljepa.data import load_vl_dataset, validate_dataset
from vljepa.data.scene_render import COLOR_RGB
from vljepa.data.scene_text import QUESTION_TYPES, region_of
from vljepa.data.scenes import SceneConfig, generate_scene, load_scenes, load_scenes_vqa

SMALL = {"num_images": 40, "use_cache": False}


def _png_column(ds):
    return [row["bytes"] for row in ds.cast_column("image", datasets.Image(decode=False))["image"]]


def test_same_seed_gives_identical_png_bytes_and_other_seeds_differ():
    first = _png_column(load_scenes("train", seed=3, **SMALL))
    again = _png_column(load_scenes("train", seed=3, **SMALL))
    other = _png_column(load_scenes("train", seed=4, **SMALL))
    assert first == again
    assert sum(a != b for a, b in zip(first, other)) == len(first)
    assert len(set(first)) == len(first)


def test_image_i_does_not_depend_on_dataset_size():
    small = load_scenes("validation", num_images=3, use_cache=False)
    large = load_scenes("validation", num_images=6, use_cache=False)
    assert _png_column(small) == _png_column(large)[:3]
    assert small["captions"] == large["captions"][:3]


def test_splits_differ():
    train = set(_png_column(load_scenes("train", **SMALL)))
    test = set(_png_column(load_scenes("test", **SMALL)))
    assert not train & test


@pytest.mark.parametrize("split", ["train", "validation", "test"])
def test_heldout_pairs_never_appear_or_are_mentioned_outside_heldout(split):
    config = SceneConfig(num_images=60)
    for index in range(config.num_images):
        scene = generate_scene(config, split, index)
        assert not {item.pair for item in scene["objects"]} & set(config.heldout_pairs)
        texts = scene["captions"] + [q["question"] + " " + q["answer"] for q in scene["questions"]]
        for text in texts:
            for pair in config.heldout_pairs:
                assert pair not in text, (index, text)


def test_every_heldout_image_holds_a_heldout_pair():
    config = SceneConfig(num_images=40)
    pairs = Counter()
    for index in range(config.num_images):
        found = {item.pair for item in generate_scene(config, "heldout", index)["objects"]} & set(
            config.heldout_pairs
        )
        assert found
        pairs.update(found)
    assert set(pairs) == set(config.heldout_pairs)


def test_captions_tell_images_apart_and_schema_holds():
    ds = load_scenes("train", **SMALL)
    validate_dataset(ds, "captioning", check_rows=None)
    assert len({tuple(captions) for captions in ds["captions"]}) == len(ds)
    assert all(len(captions) >= 3 for captions in ds["captions"])


def _count_colour_pixels(image, color: str) -> int:
    pixels = np.asarray(image).astype(int)
    return int((np.abs(pixels - np.asarray(COLOR_RGB[color])).max(axis=-1) <= 2).sum())


def test_pixels_show_the_described_objects():
    clean = {"noise_std": 0.0, "color_jitter": 0.0, "textures": ["plain"], "num_images": 20}
    config = SceneConfig(**clean)
    ds = load_scenes("train", use_cache=False, config=config)
    for row in ds:
        for color in {obj["color"] for obj in row["objects"]}:
            assert _count_colour_pixels(row["image"], color) > 20
        absent = set(config.colors) - {obj["color"] for obj in row["objects"]}
        for color in absent:
            assert _count_colour_pixels(row["image"], color) == 0


def test_vqa_answers_follow_from_the_objects():
    ds = load_scenes_vqa("train", **SMALL)
    validate_dataset(ds, "vqa", check_rows=None)
    assert set(ds["question_type"]) == set(QUESTION_TYPES)
    assert len(set(ds["question_id"])) == len(ds)
    checked = Counter()
    for row in ds.remove_columns("image"):
        objects, question, answer = row["objects"], row["question"], row["answers"][0]
        if question == "how many objects are there?":
            assert answer == str(len(objects))
        elif match := re.fullmatch(r"is there an? (\w+) (\w+)\?", question):
            present = any(o["color"] == match[1] and o["shape"] == match[2] for o in objects)
            assert answer == ("yes" if present else "no")
        elif match := re.fullmatch(r"what color is the (\w+)\?", question):
            assert [o["color"] for o in objects if o["shape"] == match[1]] == [answer]
        elif match := re.fullmatch(r"where is the (\w+) (\w+)\?", question):
            from vljepa.data.scene_render import PlacedObject

            (obj,) = [o for o in objects if o["color"] == match[1] and o["shape"] == match[2]]
            assert region_of(PlacedObject(**obj)) == answer
        else:
            continue
        checked[row["question_type"]] += 1
    assert min(checked[kind] for kind in ("count", "existence", "color", "position")) > 0


def test_streaming_matches_map_style():
    streamed = list(load_scenes("test", num_images=3, streaming=True))
    mapped = load_scenes("test", num_images=3, use_cache=False)
    assert [row["captions"] for row in streamed] == mapped["captions"]
    assert np.array_equal(np.asarray(streamed[0]["image"]), np.asarray(mapped[0]["image"]))


def test_cache_writes_png_files_once(tmp_path, monkeypatch):
    monkeypatch.setenv("JEPA_CACHE_DIR", str(tmp_path))
    first = load_vl_dataset("scenes-vqa", split="train", num_images=4)
    second = load_vl_dataset("scenes-vqa", split="train", num_images=4)
    paths = {row["path"] for row in first.cast_column("image", datasets.Image(decode=False))["image"]}
    assert len(paths) == 4 and all(path.startswith(str(tmp_path)) for path in paths)
    assert first["question"] == second["question"]
    (entry,) = tmp_path.glob("datasets/scenes-vqa-train-*.arrow")
    assert entry.stat().st_mode & 0o777 == default_file_mode()  # the umask's mode, as any file the user writes
    assert not list(tmp_path.glob("datasets/.*.tmp"))  # no staging file left behind


@pytest.mark.parametrize(
    ("overrides", "pattern"),
    [
        ({"heldout_pairs": ["pink circle"]}, "not 'colour shape' pairs"),
        (
            {
                "colors": ["red"],
                "heldout_pairs": ["red circle", "red square", "red triangle", "red star", "red cross"],
            },
            "every shape of colour 'red'",
        ),
        ({"min_objects": 3, "max_objects": 2}, "min_objects"),
        ({"shapes": ["hexagon"]}, "shapes must be"),
        ({"repeat_probability": 1.0}, "repeat_probability"),
    ],
)
def test_scene_config_validation(overrides, pattern):
    with pytest.raises(ValueError, match=pattern):
        SceneConfig(**overrides)


def test_unknown_split_is_rejected():
    with pytest.raises(ValueError, match="heldout"):
        load_scenes("dev", **SMALL)


def test_cache_rebuilds_when_its_png_files_are_gone(tmp_path, monkeypatch):
    import shutil

    monkeypatch.setenv("JEPA_CACHE_DIR", str(tmp_path))
    first = load_scenes("test", num_images=2)
    shutil.rmtree(next((tmp_path / "datasets").glob("scenes-images-*")))
    again = load_scenes("test", num_images=2)
    assert again["captions"] == first["captions"]
    assert np.asarray(again[1]["image"]).shape == (96, 96, 3)
