"""Task schemas, their validators, and the dataset registry."""

from __future__ import annotations

import datasets
import PIL.Image
import pytest

from vljepa.data import (
    CAPTION_FEATURES,
    STREAM_FEATURES,
    VQA_FEATURES,
    SchemaError,
    list_vl_datasets,
    load_vl_dataset,
    validate_dataset,
    validate_example,
    vl_dataset_entry,
)

IMAGE = PIL.Image.new("RGB", (4, 4))
GOOD = {
    "captioning": {"image": IMAGE, "captions": ["a cat"], "image_id": "1"},
    "vqa": {
        "image": {"path": "x.png", "bytes": None},
        "question": "what?",
        "answers": ["red"],
        "question_type": "color",
        "candidates": ["red", "blue"],
        "image_id": "1",
        "question_id": "q1",
    },
    "stream": {
        "frames": [IMAGE, IMAGE],
        "fps": 2.0,
        "annotations": [{"start": 0.0, "end": 1.0, "text": "x moves"}],
        "stream_id": "s",
    },
}


@pytest.mark.parametrize("task", sorted(GOOD))
def test_good_examples_pass(task):
    validate_example(GOOD[task], task)


@pytest.mark.parametrize(
    ("task", "change", "pattern"),
    [
        ("captioning", {"captions": []}, "at least 1"),
        ("captioning", {"captions": ["ok", " "]}, r"captions\[1\]"),
        ("captioning", {"image": None}, "'image' is missing"),
        ("vqa", {"answers": ["green"]}, "not among the candidates"),
        ("vqa", {"question": ""}, "'question' is empty"),
        ("vqa", {"question_id": 7}, "must be a string"),
        ("stream", {"fps": 0}, "positive"),
        ("stream", {"annotations": [{"start": 0.5, "end": 0.5, "text": "x"}]}, "start < end"),
        ("stream", {"annotations": [{"start": 0.0, "end": 1.5, "text": "x"}]}, "after the stream's end"),
        ("stream", {"frames": []}, "non-empty list"),
    ],
)
def test_bad_examples_name_row_and_field(task, change, pattern):
    with pytest.raises(SchemaError, match=pattern) as caught:
        validate_example({**GOOD[task], **change}, task, row=5)
    assert "row 5" in str(caught.value)


def test_missing_field_is_named():
    example = dict(GOOD["vqa"])
    del example["candidates"]
    with pytest.raises(SchemaError, match=r"missing field\(s\) \['candidates'\]"):
        validate_example(example, "vqa")


def test_validate_dataset_checks_feature_types_and_rows():
    ds = datasets.Dataset.from_dict(
        {key: [value] for key, value in GOOD["captioning"].items()}, features=CAPTION_FEATURES
    )
    validate_dataset(ds, "captioning")
    wrong = ds.remove_columns("image_id")
    with pytest.raises(SchemaError, match="'image_id'"):
        validate_dataset(wrong, "captioning")
    as_text = datasets.Dataset.from_dict({"image": ["x.png"], "captions": [["a"]], "image_id": ["1"]})
    with pytest.raises(SchemaError, match="column 'image' has type"):
        validate_dataset(as_text, "captioning")
    bad_row = datasets.Dataset.from_dict(
        {"image": [IMAGE, IMAGE], "captions": [["a"], []], "image_id": ["1", "2"]}, features=CAPTION_FEATURES
    )
    with pytest.raises(SchemaError, match="row 1"):
        validate_dataset(bad_row, "captioning")


@pytest.mark.parametrize(("features", "task"), [(VQA_FEATURES, "vqa"), (STREAM_FEATURES, "stream")])
def test_empty_datasets_with_task_features_validate(features, task):
    validate_dataset(datasets.Dataset.from_dict({key: [] for key in features}, features=features), task)


def test_registry_names_and_loaders():
    expected = {
        "easyvqa",
        "easyvqa-captions",
        "easyvqa-classes",
        "easyvqa-reworded",
        "easyvqa-paraphrased",
        "easyvqa-unseen-constructions",
        "scenes",
        "scenes-reworded",
        "scenes-vqa",
        "streams",
        "coco-karpathy",
        "flickr30k",
        "vqav2",
        "gqa",
        "pope",
        "tallyqa",
        "folder",
        "hub",
    }
    assert set(list_vl_datasets()) == expected
    for name in expected:
        assert callable(vl_dataset_entry(name).load_function())
    with pytest.raises(ValueError, match="unknown dataset 'cocoo'.*coco-karpathy"):
        load_vl_dataset("cocoo")


@pytest.mark.parametrize("name", ["coco-karpathy", "flickr30k", "vqav2", "gqa", "tallyqa", "pope", "folder"])
def test_adapters_without_root_explain_what_they_need(name):
    with pytest.raises(ValueError, match="root="):
        load_vl_dataset(name, split="test")
