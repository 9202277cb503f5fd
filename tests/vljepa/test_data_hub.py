"""The `hub` data source: datasets.load_dataset (here `imagefolder` on a folder the test writes) mapped onto the
captioning / VQA schema, with named columns; missing columns and empty text are errors naming row or column."""

from __future__ import annotations

import json

import datasets
import pytest
from PIL import Image

from vljepa.data import load_vl_dataset
from vljepa.data.adapters.common import DataFormatError
from vljepa.data.schema import SchemaError, features_for


def _imagefolder(root, rows):
    root.mkdir(parents=True)
    for index, row in enumerate(rows):
        Image.new("RGB", (8, 8), color=(index * 40, 0, 0)).save(root / row["file_name"])
    (root / "metadata.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    return root


def test_imagefolder_captions_and_vqa(tmp_path):
    rows = [{"file_name": "a.png", "text": "a red square", "q": "what colour?", "a": "red", "id": "img-a"},
            {"file_name": "b.png", "text": "a dark square", "q": "is it dark?", "a": "yes", "id": "img-b"}]
    folder = _imagefolder(tmp_path / "data" / "train", rows)
    captions = load_vl_dataset("hub", split="train", path="imagefolder", data_dir=str(folder.parent),
                               task="captioning", caption_column="text", image_id_column="id")
    assert captions.features == features_for("captioning")
    assert sorted(captions["captions"]) == [["a dark square"], ["a red square"]]
    assert sorted(captions["image_id"]) == ["img-a", "img-b"]
    assert all(isinstance(image, Image.Image) for image in captions["image"])
    vqa = load_vl_dataset("hub", split="train", path="imagefolder", data_dir=str(folder.parent), task="vqa",
                          question_column="q", answer_column="a")
    assert vqa.features == features_for("vqa")
    assert sorted(zip(vqa["question"], vqa["answers"])) == [("is it dark?", ["yes"]), ("what colour?", ["red"])]
    assert sorted(vqa["question_id"]) == ["train-0", "train-1"]


def test_missing_column_and_empty_caption_are_named(tmp_path):
    folder = _imagefolder(tmp_path / "d" / "train", [{"file_name": "a.png", "text": "ok"},
                                                     {"file_name": "b.png", "text": ""}])
    with pytest.raises(DataFormatError, match=r"no column\(s\) \['caption'\].*columns are"):
        load_vl_dataset("hub", split="train", path="imagefolder", data_dir=str(folder.parent), task="captioning")
    with pytest.raises(SchemaError, match="row 1"):
        load_vl_dataset("hub", split="train", path="imagefolder", data_dir=str(folder.parent), task="captioning",
                        caption_column="text")


def test_in_memory_hub_dataset_through_load_dataset(tmp_path, monkeypatch):
    image = Image.new("RGB", (8, 8))
    source = datasets.Dataset.from_dict({"img": [image], "caption": [["one", "two"]]},
                                        features=datasets.Features({"img": datasets.Image(),
                                                                    "caption": datasets.List(datasets.Value("string"))}))
    calls = []

    def fake_load_dataset(path, name=None, **kwargs):
        calls.append((path, name, kwargs))
        return source

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    loaded = load_vl_dataset("hub", split="test", path="me/captions", revision="abc", task="captioning",
                             image_column="img")
    assert calls == [("me/captions", None, {"data_dir": None, "split": "test", "revision": "abc"})]
    assert loaded["captions"] == [["one", "two"]] and loaded["image_id"] == ["test-0"]


def test_bad_images_meet_the_same_policy_as_the_folder_adapter(tmp_path):
    from bad_images import BAD
    from test_bad_images_training import captioned_folder

    from vljepa.data.images import ImageLoader
    from vljepa.training.data import caption_stage, decode_stage_images

    root = captioned_folder(tmp_path / "data", good=2)
    dataset = load_vl_dataset("hub", split="train", path="imagefolder", data_dir=str(root), task="captioning")
    stage = caption_stage(dataset, epochs=1, source="hub[train]")
    loader = ImageLoader(on_bad_input="skip")
    decode_stage_images(stage, loader)
    assert dict(loader.report.counts) == {reason: 1 for reason in BAD.values()}
