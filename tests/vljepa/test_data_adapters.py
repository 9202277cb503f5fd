"""Corpus adapters against tiny local fixtures written in the exact upstream file layouts."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import datasets
import PIL.Image
import pytest

from vljepa.data import load_vl_dataset, validate_dataset
from vljepa.data.adapters import DataFormatError
from vljepa.data.images import BadInputError, BadInputReport, load_image


def _write_image(path: Path, color=(200, 30, 30)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = "PNG" if path.suffix == ".png" else "JPEG"
    PIL.Image.new("RGB", (8, 6), color).save(path, format=fmt)


def _write_json(path: Path, data) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def _write_jsonl(path: Path, records) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return path


# ---------------------------------------------------------------- Karpathy (COCO, Flickr30k)


def _karpathy_entry(imgid, filename, split, sentences, **extra):
    return {
        "filename": filename,
        "imgid": imgid,
        "split": split,
        "sentids": list(range(len(sentences))),
        "sentences": [
            {"tokens": s.lower().split(), "raw": s, "imgid": imgid, "sentid": k}
            for k, s in enumerate(sentences)
        ],
        **extra,
    }


@pytest.fixture
def coco_root(tmp_path):
    root = tmp_path / "coco"
    entries = []
    layout = [
        ("train2014", "train", 9),
        ("val2014", "restval", 25),
        ("val2014", "val", 42),
        ("val2014", "test", 73),
    ]
    for imgid, (folder, split, cocoid) in enumerate(layout):
        filename = f"COCO_{folder}_{cocoid:012d}.jpg"
        _write_image(root / folder / filename)
        entries.append(
            _karpathy_entry(
                imgid,
                filename,
                split,
                [f"A cat number {cocoid}. ", "a second caption"],
                filepath=folder,
                cocoid=cocoid,
            )
        )
    _write_json(root / "dataset_coco.json", {"images": entries, "dataset": "coco"})
    return root


@pytest.mark.parametrize(
    ("split", "include_restval", "expected_ids"),
    [
        ("train", True, ["9", "25"]),
        ("train", False, ["9"]),
        ("validation", True, ["42"]),
        ("test", True, ["73"]),
    ],
)
def test_coco_karpathy_splits(coco_root, split, include_restval, expected_ids):
    ds = load_vl_dataset("coco-karpathy", split=split, root=coco_root, include_restval=include_restval)
    validate_dataset(ds, "captioning", check_rows=None)
    assert ds["image_id"] == expected_ids
    assert ds[0]["captions"][0] == f"A cat number {expected_ids[0]}."
    assert ds[0]["image"].size == (8, 6)


def test_coco_karpathy_missing_raw_names_file_and_field(coco_root):
    data = json.loads((coco_root / "dataset_coco.json").read_text())
    del data["images"][3]["sentences"][1]["raw"]
    _write_json(coco_root / "dataset_coco.json", data)
    with pytest.raises(BadInputError, match=r"dataset_coco.json row 3.*sentences\[1\].*raw"):
        load_vl_dataset("coco-karpathy", split="test", root=coco_root)


def test_coco_karpathy_missing_file_and_layout(tmp_path, coco_root):
    with pytest.raises(DataFormatError, match="dataset_coco.json"):
        load_vl_dataset("coco-karpathy", split="test", root=tmp_path / "nowhere")
    _write_json(coco_root / "dataset_coco.json", {"dataset": "coco"})
    with pytest.raises(DataFormatError, match="'images'"):
        load_vl_dataset("coco-karpathy", split="test", root=coco_root)


def test_flickr30k(tmp_path):
    root = tmp_path / "flickr"
    entries = []
    for imgid, (name, split) in enumerate(
        [("1000092795.jpg", "train"), ("10002456.jpg", "test"), ("1001465944.jpg", "test")]
    ):
        _write_image(root / "flickr30k-images" / name)
        entries.append(
            _karpathy_entry(imgid, name, split, ["Two young guys with shaggy hair .", "a b c", "d", "e", "f"])
        )
    _write_json(root / "dataset_flickr30k.json", {"images": entries, "dataset": "flickr30k"})
    ds = load_vl_dataset("flickr30k", split="test", root=root)
    validate_dataset(ds, "captioning", check_rows=None)
    assert ds["image_id"] == ["10002456", "1001465944"]
    assert len(ds[0]["captions"]) == 5
    (root / "flickr30k-images" / "1001465944.jpg").unlink()
    with pytest.raises(BadInputError, match="1001465944.jpg does not exist"):
        load_vl_dataset("flickr30k", split="test", root=root)
    report = BadInputReport()
    kept = load_vl_dataset("flickr30k", split="test", root=root, on_bad_input="skip", report=report)
    assert kept["image_id"] == ["10002456"] and report.counts == {"not_found": 1}


# ---------------------------------------------------------------- VQAv2


@pytest.fixture
def vqav2_root(tmp_path):
    root = tmp_path / "vqav2"
    questions, annotations = [], []
    for k, image_id in enumerate([262148, 262148, 393225]):
        question_id = image_id * 1000 + k
        _write_image(root / "val2014" / f"COCO_val2014_{image_id:012d}.jpg")
        questions.append(
            {"image_id": image_id, "question": f"Where is thing {k}?", "question_id": question_id}
        )
        answers = [
            {"answer": "down" if n < 7 else "floor", "answer_confidence": "yes", "answer_id": n + 1}
            for n in range(10)
        ]
        annotations.append(
            {
                "question_type": "where is",
                "multiple_choice_answer": "down",
                "answers": answers,
                "image_id": image_id,
                "answer_type": "other",
                "question_id": question_id,
            }
        )
    info = {"description": "fixture"}
    _write_json(
        root / "v2_OpenEnded_mscoco_val2014_questions.json",
        {
            "info": info,
            "task_type": "Open-Ended",
            "data_type": "mscoco",
            "license": {},
            "data_subtype": "val2014",
            "questions": questions,
        },
    )
    _write_json(
        root / "v2_mscoco_val2014_annotations.json",
        {"info": info, "license": {}, "data_subtype": "val2014", "annotations": annotations},
    )
    return root


def test_vqav2_rows(vqav2_root):
    ds = load_vl_dataset("vqav2", split="validation", root=vqav2_root)
    validate_dataset(ds, "vqa", check_rows=None)
    assert len(ds) == 3
    row = ds[0]
    assert len(row["answers"]) == 10 and row["answers"].count("down") == 7
    assert (row["question_type"], row["answer_type"], row["multiple_choice_answer"]) == (
        "where is",
        "other",
        "down",
    )
    assert row["image_id"] == "262148" and row["question_id"] == "262148000" and row["candidates"] == []


def test_vqav2_missing_annotation_field_and_file(vqav2_root):
    path = vqav2_root / "v2_mscoco_val2014_annotations.json"
    data = json.loads(path.read_text())
    del data["annotations"][1]["question_type"]
    _write_json(path, data)
    with pytest.raises(BadInputError, match=r"questions.json row 1.*'question_type'"):
        load_vl_dataset("vqav2", split="validation", root=vqav2_root)
    report = BadInputReport()
    ds = load_vl_dataset("vqav2", split="validation", root=vqav2_root, on_bad_input="skip", report=report)
    assert len(ds) == 2 and report.counts == {"missing": 1}
    path.unlink()
    with pytest.raises(DataFormatError, match="v2_mscoco_val2014_annotations.json"):
        load_vl_dataset("vqav2", split="validation", root=vqav2_root)


# ---------------------------------------------------------------- GQA


def _gqa_record(image_id, question, answer, detailed="existThatOr"):
    return {
        "semantic": [],
        "entailed": [],
        "equivalent": [],
        "question": question,
        "imageId": image_id,
        "isBalanced": True,
        "groups": {"global": None, "local": "13-sheet_white"},
        "answer": answer,
        "semanticStr": "select: sheet",
        "annotations": {"answer": {}, "question": {}, "fullAnswer": {}},
        "types": {"detailed": detailed, "semantic": "attr", "structural": "verify"},
        "fullAnswer": f"{answer.capitalize()}, it is.",
    }


def test_gqa_rows_and_missing_field(tmp_path):
    root = tmp_path / "gqa"
    for image_id in ("2354786", "n161313"):
        _write_image(root / "images" / f"{image_id}.jpg")
    data = {
        "02930152": _gqa_record("2354786", "Is the sky dark?", "yes"),
        "07333408": _gqa_record("n161313", "What is on the white wall?", "pipe", "relS"),
    }
    _write_json(root / "testdev_balanced_questions.json", data)
    ds = load_vl_dataset("gqa", split="testdev", root=root)
    validate_dataset(ds, "vqa", check_rows=None)
    assert ds["question_id"] == ["02930152", "07333408"]
    assert ds["answers"] == [["yes"], ["pipe"]] and ds["question_type"] == ["existThatOr", "relS"]
    assert ds[0]["full_answer"] == "Yes, it is." and ds[0]["structural_type"] == "verify"
    del data["07333408"]["imageId"]
    _write_json(root / "testdev_balanced_questions.json", data)
    with pytest.raises(BadInputError, match=r"testdev_balanced_questions.json row '07333408'.*'imageId'"):
        load_vl_dataset("gqa", split="testdev", root=root)


# ---------------------------------------------------------------- POPE


def test_pope_categories_and_ids(tmp_path):
    root = tmp_path / "pope"
    _write_image(root / "val2014" / "COCO_val2014_000000310196.jpg")
    for category in ("random", "adversarial"):
        _write_jsonl(
            root / f"coco_pope_{category}.json",
            [
                {
                    "question_id": 1,
                    "image": "COCO_val2014_000000310196.jpg",
                    "text": "Is there a snowboard in the image?",
                    "label": "yes",
                },
                {
                    "question_id": 2,
                    "image": "COCO_val2014_000000310196.jpg",
                    "text": "Is there a dog in the image?",
                    "label": "no",
                },
            ],
        )
    ds = load_vl_dataset("pope", split="test", root=root, categories=["random", "adversarial"])
    validate_dataset(ds, "vqa", check_rows=None)
    assert ds["question_id"] == ["random-1", "random-2", "adversarial-1", "adversarial-2"]
    assert ds["answers"] == [["yes"], ["no"], ["yes"], ["no"]]
    assert set(ds["question_type"]) == {"random", "adversarial"} and ds[0]["candidates"] == ["yes", "no"]
    with pytest.raises(DataFormatError, match="coco_pope_popular.json"):
        load_vl_dataset("pope", split="test", root=root)


def test_pope_bad_label_and_duplicate(tmp_path):
    root = tmp_path / "pope"
    _write_image(root / "val2014" / "a.jpg")
    record = {
        "question_id": 1,
        "image": "a.jpg",
        "text": "Is there a cat?",
        "label": "yes",
        "category": "random",
    }
    _write_jsonl(
        root / "coco_pope_random.json", [record, record, {**record, "question_id": 3, "label": "maybe"}]
    )
    with pytest.raises(BadInputError, match=r"coco_pope_random.json row 3.*label"):
        load_vl_dataset("pope", split="test", root=root, categories=["random"])
    report = BadInputReport()
    ds = load_vl_dataset(
        "pope", split="test", root=root, categories=["random"], on_bad_input="skip", report=report
    )
    assert ds["question_id"] == ["random-1"]
    assert report.counts == {"missing": 1, "duplicate_id": 1}


# ---------------------------------------------------------------- TallyQA


def test_tallyqa(tmp_path):
    root = tmp_path / "tally"
    _write_image(root / "VG_100K_2" / "2410408.jpg")
    _write_image(root / "train2014" / "COCO_train2014_000000000009.jpg")
    records = [
        {
            "answer": 4,
            "data_source": "imported_genome",
            "image": "VG_100K_2/2410408.jpg",
            "image_id": 92410408,
            "issimple": False,
            "question": "How many headlights does the black bus have?",
            "question_id": 30095774,
        },
        {
            "answer": 0,
            "data_source": "amt",
            "image": "train2014/COCO_train2014_000000000009.jpg",
            "image_id": 9,
            "issimple": True,
            "question": "How many dogs are there?",
            "question_id": 17,
        },
    ]
    _write_json(root / "test.json", records)
    ds = load_vl_dataset("tallyqa", split="test", root=root)
    validate_dataset(ds, "vqa", check_rows=None)
    assert ds["answers"] == [["4"], ["0"]] and ds["question_type"] == ["complex", "simple"]
    assert ds[0]["candidates"] == [str(n) for n in range(16)] and ds[0]["data_source"] == "imported_genome"
    records[1]["answer"] = "zero"
    _write_json(root / "test.json", records)
    with pytest.raises(BadInputError, match=r"test.json row 1.*'answer'"):
        load_vl_dataset("tallyqa", split="test", root=root)


# ---------------------------------------------------------------- image folder


def test_folder_captions_jsonl_root_serves_train(tmp_path):
    root = tmp_path / "mine"
    _write_image(root / "a.png")
    _write_image(root / "sub" / "b.jpg")
    _write_jsonl(
        root / "metadata.jsonl",
        [
            {"file_name": "a.png", "caption": "a red block"},
            {"file_name": "sub/b.jpg", "captions": ["one", "two"]},
        ],
    )
    ds = load_vl_dataset("folder", split="train", root=root)
    validate_dataset(ds, "captioning", check_rows=None)
    assert ds["captions"] == [["a red block"], ["one", "two"]] and ds["image_id"] == ["a.png", "sub/b.jpg"]
    with pytest.raises(DataFormatError, match="split 'test'"):
        load_vl_dataset("folder", split="test", root=root)


def test_folder_vqa_csv_split_folder(tmp_path):
    root = tmp_path / "mine"
    _write_image(root / "test" / "x.jpg")
    with (root / "test" / "metadata.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file_name", "question", "answers", "candidates", "question_type"])
        writer.writerow(
            ["x.jpg", "what colour?", '["red", "dark red"]', '["red", "dark red", "blue"]', "color"]
        )
        writer.writerow(["x.jpg", "is it round?", "no", "", ""])
    ds = load_vl_dataset("folder", split="test", root=root)
    validate_dataset(ds, "vqa", check_rows=None)
    assert ds["answers"] == [["red", "dark red"], ["no"]]
    assert ds["candidates"] == [["red", "dark red", "blue"], []]
    assert ds["question_type"] == ["color", "unspecified"] and ds["question_id"] == ["test-0", "test-1"]
    assert load_image(ds.cast_column("image", datasets.Image(decode=False))[0]["image"]).mode == "RGB"


@pytest.mark.parametrize(
    ("metadata", "error", "pattern"),
    [
        ([{"file_name": "a.png"}], DataFormatError, "needs a 'question' column"),
        ([{"file_name": "a.png", "caption": "x", "question": "y"}], DataFormatError, "pass task="),
        ([{"caption": "x"}], BadInputError, r"metadata.jsonl row line 1.*'file_name'"),
        ([{"file_name": "gone.png", "caption": "x"}], BadInputError, "gone.png does not exist"),
        (
            [{"file_name": "a.png", "caption": "x"}, {"file_name": "a.png", "caption": "y"}],
            BadInputError,
            "duplicate_id",
        ),
    ],
)
def test_folder_errors(tmp_path, metadata, error, pattern):
    root = tmp_path / "mine"
    _write_image(root / "a.png")
    _write_jsonl(root / "metadata.jsonl", metadata)
    with pytest.raises(error, match=pattern):
        load_vl_dataset("folder", split="train", root=root, on_bad_input="error")


def test_unknown_dataset_lists_names():
    with pytest.raises(ValueError, match="coco-karpathy.*easyvqa.*vqav2"):
        load_vl_dataset("imagenet")
