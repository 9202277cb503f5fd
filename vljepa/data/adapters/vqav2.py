"""VQAv2 (questions + annotations JSON, COCO images) -> ``vqa`` schema.

Upstream files for a subtype such as ``val2014``::

    v2_OpenEnded_mscoco_val2014_questions.json
        {"info": ..., "task_type": "Open-Ended", "data_type": "mscoco", "data_subtype": "val2014",
         "questions": [{"image_id": 262148, "question": "Where is he looking?", "question_id": 262148000}]}
    v2_mscoco_val2014_annotations.json
        {"info": ..., "data_subtype": "val2014",
         "annotations": [{"question_id": 262148000, "image_id": 262148, "question_type": "where is",
                          "answer_type": "other", "multiple_choice_answer": "down",
                          "answers": [{"answer": "down", "answer_confidence": "yes",
                                       "answer_id": 1}, ... 10 in all]}]}
    <image_root>/val2014/COCO_val2014_000000262148.jpg

Splits: ``train`` (train2014), ``validation`` (val2014), ``test`` (test2015) and ``test-dev``
(test-dev2015, images in test2015/). Test splits have no annotations: ``answers`` is empty and
``question_type`` is ``"unannotated"``. Extra columns: ``answer_type``, ``multiple_choice_answer``.
``candidates`` is empty (open-ended).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import datasets

from vljepa.data.adapters.common import (
    DataFormatError,
    RowReader,
    build_dataset,
    convert_rows,
    expect_type,
    read_json,
)
from vljepa.data.images import BadInputReport

# split -> (data subtype in file names, image folder / file-name subtype, annotated?)
VQAV2_SPLITS: dict[str, tuple[str, str, bool]] = {
    "train": ("train2014", "train2014", True),
    "validation": ("val2014", "val2014", True),
    "test": ("test2015", "test2015", False),
    "test-dev": ("test-dev2015", "test2015", False),
}
VQAV2_EXTRA_FEATURES = {
    "answer_type": datasets.Value("string"),
    "multiple_choice_answer": datasets.Value("string"),
}


def _annotations_by_question(path: Path) -> dict[int, dict[str, Any]]:
    data = expect_type(read_json(path, what="VQAv2 annotations file"), dict, where=str(path))
    if "annotations" not in data:
        raise DataFormatError(f"{path}: missing top-level field 'annotations'")
    by_question: dict[int, dict[str, Any]] = {}
    for row, annotation in enumerate(
        expect_type(data["annotations"], list, where=f"{path} field 'annotations'")
    ):
        if not isinstance(annotation, dict) or "question_id" not in annotation:
            raise DataFormatError(f"{path} annotations[{row}]: missing field 'question_id'")
        by_question[annotation["question_id"]] = annotation
    return by_question


def _vqav2_files(
    split: str, root: str | Path | None, questions_file, annotations_file, image_root
) -> tuple[Path, Path | None, Path]:
    """The questions file, the annotations file (None for an unannotated split without one given) and the
    image folder of ``split``: the given paths, else ``root`` with the upstream names."""
    if split not in VQAV2_SPLITS:
        raise ValueError(f"VQAv2 splits are {list(VQAV2_SPLITS)}; got split={split!r}")
    subtype, image_subtype, annotated = VQAV2_SPLITS[split]
    if root is None and (questions_file is None or image_root is None):
        raise ValueError("vqav2 needs root= or questions_file= and image_root= (and annotations_file=)")
    base = Path(root) if root is not None else None
    questions_path = Path(questions_file or base / f"v2_OpenEnded_mscoco_{subtype}_questions.json")
    annotations_path = None
    if annotated or annotations_file is not None:
        annotations_path = Path(annotations_file or base / f"v2_mscoco_{subtype}_annotations.json")
    return questions_path, annotations_path, Path(image_root or base) / image_subtype


def _read_questions(path: Path) -> list[Any]:
    data = expect_type(read_json(path, what="VQAv2 questions file"), dict, where=str(path))
    if "questions" not in data:
        raise DataFormatError(f"{path}: missing top-level field 'questions'")
    return expect_type(data["questions"], list, where=f"{path} field 'questions'")


def _answer_fields(reader: RowReader, annotation: dict[str, Any], row: int | str) -> dict[str, Any]:
    """``answers`` (the 10 human answers), ``question_type``, ``answer_type``, ``multiple_choice_answer``."""
    where = f"{row} (annotation)"
    answer_dicts = reader.require(annotation, "answers", where, kind=list)
    answers = [str(item.get("answer", "")).strip() for item in answer_dicts if isinstance(item, dict)]
    if len(answers) != len(answer_dicts) or not all(answers):
        raise reader.bad(row, "missing", "an entry of 'answers' has no 'answer' text")
    return {
        "answers": answers,
        "question_type": reader.require(annotation, "question_type", where, kind=str),
        "answer_type": reader.require(annotation, "answer_type", where, kind=str),
        "multiple_choice_answer": reader.require(annotation, "multiple_choice_answer", where, kind=str),
    }


UNANNOTATED = {"answers": [], "question_type": "unannotated", "answer_type": "", "multiple_choice_answer": ""}


def load_vqav2(
    split: str = "train",
    *,
    root: str | Path | None = None,
    questions_file: str | Path | None = None,
    annotations_file: str | Path | None = None,
    image_root: str | Path | None = None,
    on_bad_input: str | None = None,
    report: BadInputReport | None = None,
    check_images: bool = True,
) -> datasets.Dataset:
    """VQAv2 questions with their 10 human answers; files default to ``root`` with upstream names."""
    questions_path, annotations_path, image_folder = _vqav2_files(
        split, root, questions_file, annotations_file, image_root
    )
    image_subtype = VQAV2_SPLITS[split][1]
    questions = _read_questions(questions_path)
    annotations = _annotations_by_question(annotations_path) if annotations_path is not None else None
    reader = RowReader(
        source=str(questions_path), split=split, on_bad_input=on_bad_input, report=report, check_images=check_images
    )

    def convert(record: Any, row: int | str) -> dict[str, Any]:
        question_id = reader.require(record, "question_id", row, kind=int)
        image_id = reader.require(record, "image_id", row, kind=int)
        question = reader.require(record, "question", row, kind=str)
        fields = UNANNOTATED
        if annotations is not None:
            annotation = annotations.get(question_id)
            if annotation is None:
                raise reader.bad(row, "missing", f"question_id {question_id} has no annotation")
            fields = _answer_fields(reader, annotation, row)
        file_name = f"COCO_{image_subtype}_{image_id:012d}.jpg"
        return {
            "image": reader.image(image_folder, file_name, row),
            "question": question,
            "answers": list(fields["answers"]),
            "question_type": fields["question_type"],
            "candidates": [],
            "image_id": str(image_id),
            "question_id": str(question_id),
            "answer_type": fields["answer_type"],
            "multiple_choice_answer": fields["multiple_choice_answer"],
        }

    rows = convert_rows(enumerate(questions), convert)
    return build_dataset(rows, task="vqa", split=split, extra_features=VQAV2_EXTRA_FEATURES,
                         unique_field="question_id", reader=reader)
