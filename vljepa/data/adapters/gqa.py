"""GQA (questions JSON keyed by question id, Visual Genome images) -> ``vqa`` schema.

Upstream ``<split>_balanced_questions.json``::

    {"201307251": {"imageId": "2386621", "question": "Is it overcast?", "answer": "no",
                   "fullAnswer": "No, it is clear.", "isBalanced": true,
                   "types": {"structural": "verify", "semantic": "attr", "detailed": "weatherVerify"},
                   "semantic": [...], "entailed": [...], "equivalent": [...], "groups": {...},
                   "annotations": {...}, "semanticStr": "..."}, ...}
    <root>/images/2386621.jpg

Splits: ``train``, ``validation`` (``val``), ``testdev``, ``test`` (``balanced=False`` reads
``<split>_all_questions.json``; the sharded ``train_all_questions/`` folder is not read). ``answers`` is
``[answer]``; ``question_type`` is ``types.detailed``; extras ``full_answer``, ``structural_type``,
``semantic_type``. ``candidates`` is empty (open vocabulary). Test questions without an answer get
``answers = []``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import datasets

from vljepa.data.adapters.common import RowReader, build_dataset, convert_rows, expect_type, read_json
from vljepa.data.images import BadInputReport

GQA_SPLITS = {"train": "train", "validation": "val", "testdev": "testdev", "test": "test"}
GQA_EXTRA_FEATURES = {
    "full_answer": datasets.Value("string"),
    "structural_type": datasets.Value("string"),
    "semantic_type": datasets.Value("string"),
}


def load_gqa(
    split: str = "train",
    *,
    root: str | Path | None = None,
    questions_file: str | Path | None = None,
    image_root: str | Path | None = None,
    balanced: bool = True,
    on_bad_input: str | None = None,
    report: BadInputReport | None = None,
    check_images: bool = True,
) -> datasets.Dataset:
    """GQA questions; files default to ``root/<split>_balanced_questions.json`` and ``root/images/``."""
    if split not in GQA_SPLITS:
        raise ValueError(f"GQA splits are {list(GQA_SPLITS)}; got split={split!r}")
    if root is None and (questions_file is None or image_root is None):
        raise ValueError("gqa needs root= or both questions_file= and image_root=")
    kind = "balanced" if balanced else "all"
    questions_path = Path(questions_file or Path(root) / f"{GQA_SPLITS[split]}_{kind}_questions.json")
    images = Path(image_root or Path(root) / "images")
    data = expect_type(read_json(questions_path, what="GQA questions file"), dict, where=str(questions_path))
    reader = RowReader(
        source=str(questions_path),
        split=split,
        on_bad_input=on_bad_input,
        report=report,
        check_images=check_images,
    )
    answered = split != "test"

    def convert(record: Any, question_id: int | str) -> dict[str, Any]:
        row = f"{question_id!r}"
        image_id = str(reader.require(record, "imageId", row))
        question = reader.require(record, "question", row, kind=str)
        types = reader.require(record, "types", row, kind=dict) if answered else record.get("types") or {}
        detailed = types.get("detailed") if answered else types.get("detailed", "unannotated")
        if not isinstance(detailed, str) or not detailed:
            raise reader.bad(row, "missing", "field 'types.detailed' is missing or empty")
        answers = [reader.require(record, "answer", row, kind=str).strip()] if answered else []
        return {
            "image": reader.image(images, f"{image_id}.jpg", row),
            "question": question,
            "answers": answers,
            "question_type": detailed,
            "candidates": [],
            "image_id": image_id,
            "question_id": str(question_id),
            "full_answer": str(record.get("fullAnswer") or ""),
            "structural_type": str(types.get("structural") or ""),
            "semantic_type": str(types.get("semantic") or ""),
        }

    rows = convert_rows(data.items(), convert)
    return build_dataset(rows, task="vqa", split=split, extra_features=GQA_EXTRA_FEATURES,
                         unique_field="question_id", reader=reader)
