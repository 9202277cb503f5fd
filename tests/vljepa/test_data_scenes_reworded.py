"""scenes-reworded: the same test scenes, captioned by a grammar disjoint from the training captions."""

from __future__ import annotations

import re
from collections import Counter

import datasets
import pytest

from vljepa.data import load_vl_dataset, validate_dataset
from vljepa.data.scene_captions_reworded import (
    RELATION_PHRASES,
    REWORDED_CAPTION_MARKERS,
    TRAINING_CAPTION_MARKERS,
    described,
)
from vljepa.data.scene_render import PlacedObject
from vljepa.data.scene_text import relation_between
from vljepa.data.scenes import SceneConfig, load_scenes, load_scenes_reworded

SMALL = {"num_images": 60, "use_cache": False}


def _has(text: str, marker: str) -> bool:
    if marker.startswith(" ") or marker.endswith(" "):
        return marker in f" {text} "
    return re.search(rf"\b{re.escape(marker)}\b", text) is not None


@pytest.fixture(scope="module")
def both():
    standard = load_scenes("test", **SMALL)
    reworded = load_vl_dataset("scenes-reworded", split="test", **SMALL)
    return standard, reworded


def test_same_scenes_same_images_same_number_of_captions(both):
    standard, reworded = both
    validate_dataset(reworded, "captioning", check_rows=None)
    assert reworded["image_id"] == standard["image_id"]
    raw = [ds.cast_column("image", datasets.Image(decode=False))["image"] for ds in (standard, reworded)]
    assert [image["bytes"] for image in raw[0]] == [image["bytes"] for image in raw[1]]
    assert [len(c) for c in reworded["captions"]] == [len(c) for c in standard["captions"]]
    assert reworded["objects"] == standard["objects"]


def test_the_two_caption_grammars_never_meet(both):
    standard, reworded = both
    training = [caption for captions in standard["captions"] for caption in captions]
    other = [caption for captions in reworded["captions"] for caption in captions]
    assert not set(training) & set(other)
    assert not [(c, m) for c in other for m in TRAINING_CAPTION_MARKERS if _has(c, m)]
    assert not [(c, m) for c in training for m in REWORDED_CAPTION_MARKERS if _has(c, m)]
    assert not set(TRAINING_CAPTION_MARKERS) & set(REWORDED_CAPTION_MARKERS)


def test_reworded_captions_state_the_same_facts(both):
    _, reworded = both
    inverse = {phrase: relation for relation, phrase in RELATION_PHRASES.items()}
    relation_pattern = re.compile(r"the (\w+) coloured (\w+) has the (\w+) coloured (\w+) (.+)")
    relations = 0
    for row in reworded:
        objects = [PlacedObject(**item) for item in row["objects"]]
        counts = Counter((item.color, item.shape) for item in objects)
        inventory = row["captions"][0]
        assert all(described(n, color, shape) in inventory for (color, shape), n in counts.items()), inventory
        for caption in row["captions"]:
            match = relation_pattern.fullmatch(caption)
            if match is None:
                continue
            second_shape, second_color, first_shape, first_color, phrase = match.groups()
            (first,) = [o for o in objects if (o.shape, o.color) == (first_shape, first_color)]
            (second,) = [o for o in objects if (o.shape, o.color) == (second_shape, second_color)]
            assert relation_between(first, second) == inverse[phrase], caption
            relations += 1
    assert relations > 10


def test_reworded_scenes_refuse_training_and_other_styles():
    with pytest.raises(ValueError, match="must never be trained on"):
        load_scenes_reworded("train", num_images=2, use_cache=False)
    with pytest.raises(ValueError, match="always uses caption_style='reworded'"):
        load_scenes_reworded("test", num_images=2, use_cache=False, caption_style="standard")
    with pytest.raises(ValueError, match="caption_style must be"):
        SceneConfig(caption_style="fancy")
    from_config = load_scenes_reworded("test", config=SceneConfig(num_images=2), use_cache=False)
    assert from_config["captions"][0][0].startswith("the picture shows")
