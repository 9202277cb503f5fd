"""easy-VQA loaders: counts, schema, question types, captions from QA facts, cache round trip."""

from __future__ import annotations

import pytest

from vljepa.data import load_vl_dataset, validate_dataset
from vljepa.data.easyvqa import (
    EASYVQA_COLORS,
    EASYVQA_SHAPES,
    ImageFacts,
    captions_from_facts,
    load_easyvqa,
    question_type_of,
)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("JEPA_CACHE_DIR", str(tmp_path / "cache"))


@pytest.mark.parametrize(
    ("answer", "expected"),
    [("circle", "shape"), ("teal", "color"), ("yes", "yes/no"), ("no", "yes/no")],
)
def test_question_type_from_answer(answer, expected):
    assert question_type_of(answer) == expected


def test_question_type_rejects_unknown_answer():
    with pytest.raises(ValueError, match="purple"):
        question_type_of("purple")


@pytest.mark.parametrize(
    ("pairs", "shape", "color"),
    [
        ([("what shape is in the image?", "circle"), ("what color is the shape?", "blue")], "circle", "blue"),
        (
            [("is there a red shape?", "yes"), ("does the image contain a triangle?", "yes")],
            "triangle",
            "red",
        ),
        ([("is there not a red shape?", "no"), ("is no circle present?", "no")], "circle", "red"),
        # two shapes known absent leaves the third
        ([("is there a circle?", "no"), ("is there not a triangle?", "yes")], "rectangle", ""),
        ([("is there a blue shape?", "no")], "", ""),
    ],
)
def test_image_facts_from_questions(pairs, shape, color):
    facts = ImageFacts(image_id=7)
    for question, answer in pairs:
        facts.add(question, answer)
    assert (facts.shape, facts.color) == (shape, color)


def test_contradicting_facts_name_the_image():
    facts = ImageFacts(image_id=42)
    facts.add("is there a circle?", "yes")
    facts.add("is there not a circle?", "yes")
    with pytest.raises(ValueError, match="image 42"):
        _ = facts.shape


def test_captions_mention_both_facts_and_are_deterministic():
    captions = captions_from_facts("circle", "blue")
    assert len(captions) >= 3 and len(set(captions)) == len(captions)
    assert all("circle" in caption and "blue" in caption for caption in captions)
    assert captions == captions_from_facts("circle", "blue")
    assert captions_from_facts("", "") == []


@pytest.mark.bundled
def test_easyvqa_test_split_counts_and_schema():
    test = load_vl_dataset("easyvqa", split="test")
    assert len(test) == 9673
    validate_dataset(test, "vqa", check_rows=200)
    first = test[0]
    assert len(first["candidates"]) == 13
    assert first["answers"][0] in first["candidates"]
    assert first["image"].mode == "RGB" and first["image"].size == (64, 64)
    assert len(set(test["question_id"])) == len(test)
    assert set(test["question_type"]) == {"shape", "color", "yes/no"}
    assert all(image_id.startswith("test-") for image_id in test["image_id"][:100])


@pytest.mark.bundled
def test_easyvqa_cache_round_trip_is_identical(tmp_path):
    built = load_easyvqa("test", use_cache=False)
    first = load_easyvqa("test")  # miss: builds and writes
    second = load_easyvqa("test")  # hit: memory-maps the Arrow file
    assert any((tmp_path / "cache" / "datasets").glob("easyvqa-vqa-test-*.arrow"))
    assert second.features == built.features and second.split == "test"
    for column in ("question", "answers", "question_id"):
        assert first[column] == built[column] == second[column]


@pytest.mark.bundled
def test_easyvqa_captions_agree_with_the_questions():
    captions = load_vl_dataset("easyvqa-captions", split="test")
    validate_dataset(captions, "captioning", check_rows=None)
    assert 900 <= len(captions) <= 1000
    assert len(set(captions["image_id"])) == len(captions)
    questions = load_vl_dataset("easyvqa", split="test")
    facts = {row["image_id"]: (row["shape"], row["color"]) for row in captions.remove_columns("image")}
    checked = 0
    for row in questions.remove_columns("image"):
        shape, color = facts.get(row["image_id"], ("", ""))
        answer = row["answers"][0]
        if row["question_type"] == "shape" and shape:
            assert answer == shape, row
            checked += 1
        elif row["question_type"] == "color" and color:
            assert answer == color, row
            checked += 1
    assert checked > 1000
    full = sum(1 for shape, color in facts.values() if shape and color)
    assert full / len(facts) > 0.75
    assert {shape for shape, _ in facts.values()} - {""} == set(EASYVQA_SHAPES)
    assert {color for _, color in facts.values()} - {""} == set(EASYVQA_COLORS)


@pytest.mark.bundled
def test_easyvqa_classes_label_each_image_by_its_facts():
    captions = load_vl_dataset("easyvqa-captions", split="test").remove_columns("image")
    facts = {row["image_id"]: (row["shape"], row["color"]) for row in captions}
    sizes = {}
    for label in ("shape", "color", "color_shape"):
        classes = load_vl_dataset("easyvqa-classes", split="test", label=label, use_cache=False)
        names = classes.features["label"].names
        sizes[label] = len(names)
        for row in classes.remove_columns("image"):
            shape, color = facts[row["image_id"]]
            expected = {"shape": shape, "color": color, "color_shape": f"{color} {shape}"}[label]
            assert names[row["label"]] == expected, row
        known = sum(1 for shape, color in facts.values() if {"shape": shape, "color": color}.get(label, shape and color))
        assert len(classes) == known
    assert sizes == {"shape": 3, "color": 8, "color_shape": 24}
    with pytest.raises(ValueError, match="label must be one of"):
        load_vl_dataset("easyvqa-classes", split="test", label="size")


def test_unknown_split_lists_the_splits():
    with pytest.raises(ValueError, match="train.*test"):
        load_easyvqa("validation")
