"""Annotation files from elsewhere: image paths that escape the dataset folder, and files that are not UTF-8."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from vljepa.data import load_vl_dataset
from vljepa.data.adapters.common import DataFormatError, path_inside


def image_folder(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    root.mkdir()
    Image.new("RGB", (8, 8), "red").save(root / "ok.png")
    Image.new("RGB", (8, 8), "blue").save(tmp_path / "outside.png")  # a real file, so only the check refuses it
    return root


ESCAPES = ["../outside.png", "sub/../../outside.png", "ABSOLUTE"]


@pytest.mark.parametrize("name", ESCAPES)
@pytest.mark.parametrize("policy", ["error", "skip"])
def test_folder_jsonl_refuses_paths_outside_the_root_naming_file_and_line(tmp_path, name, policy):
    root = image_folder(tmp_path)
    name = str(tmp_path / "outside.png") if name == "ABSOLUTE" else name
    rows = [{"file_name": "ok.png", "caption": "a red square"}, {"file_name": name, "caption": "outside"}]
    (root / "metadata.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    with pytest.raises(DataFormatError) as info:
        load_vl_dataset("folder", split="train", root=root, on_bad_input=policy)
    message = str(info.value)
    assert f"{root / 'metadata.jsonl'} row line 2" in message and repr(name) in message
    assert "outside the dataset folder" in message or "absolute path" in message


def test_folder_csv_refuses_a_parent_path(tmp_path):
    root = image_folder(tmp_path)
    (root / "metadata.csv").write_text("file_name,caption\nok.png,red\n../outside.png,blue\n")
    with pytest.raises(DataFormatError, match=r"metadata.csv row line 3: image file name '\.\./outside\.png' points"):
        load_vl_dataset("folder", split="train", root=root)


def test_inner_parent_parts_that_stay_inside_are_allowed(tmp_path):
    root = image_folder(tmp_path)
    (root / "sub").mkdir()
    (root / "metadata.jsonl").write_text(json.dumps({"file_name": "sub/../ok.png", "caption": "red"}) + "\n")
    assert len(load_vl_dataset("folder", split="train", root=root)) == 1
    assert path_inside(root, "a/b.png", where="x") == root / "a" / "b.png"


def test_karpathy_filepath_cannot_escape_either(tmp_path):
    root = tmp_path / "coco"
    (root / "val2014").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(tmp_path / "x.jpg")
    entry = {"imgid": 0, "cocoid": 1, "filepath": "..", "filename": "x.jpg", "split": "test",
             "sentences": [{"raw": "a picture"}]}  # fmt: skip
    (root / "dataset_coco.json").write_text(json.dumps({"images": [entry]}))
    with pytest.raises(DataFormatError, match=r"row 0: image file name '\.\./x\.jpg' points outside"):
        load_vl_dataset("coco-karpathy", split="test", root=root, image_root=root)


@pytest.mark.parametrize("suffix", ["jsonl", "csv"])
def test_non_utf8_metadata_names_file_and_line(tmp_path, suffix):
    root = image_folder(tmp_path)
    if suffix == "jsonl":
        good = json.dumps({"file_name": "ok.png", "caption": "red"}).encode() + b"\n"
        data = good + good.replace(b"red", b"caf\xe9") + good
    else:
        data = b"file_name,caption\nok.png,red\nok.png,caf\xe9\n"
    (root / f"metadata.{suffix}").write_bytes(data)
    with pytest.raises(DataFormatError) as info:
        load_vl_dataset("folder", split="train", root=root)
    message = str(info.value)
    assert f"{root / f'metadata.{suffix}'} line {2 if suffix == 'jsonl' else 3} is not UTF-8" in message
    assert "re-save the file as UTF-8" in message


def test_utf8_with_byte_order_mark_is_read(tmp_path):
    root = image_folder(tmp_path)
    (root / "metadata.csv").write_bytes("\ufefffile_name,caption\nok.png,café\n".encode())
    dataset = load_vl_dataset("folder", split="train", root=root)
    assert dataset[0]["captions"] == ["café"]
