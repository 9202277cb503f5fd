"""TallyQA (counting questions, JSON list; COCO and Visual Genome images) -> ``vqa`` schema.

Upstream ``train.json`` / ``test.json``::

    [{"image": "VG_100K_2/2410408.jpg", "question": "How many headlights does the black bus have?",
      "answer": 4, "image_id": 92410408, "data_source": "imported_genome", "question_id": 30095774,
      "issimple": false}, ...]

``image`` is relative to the image root (``VG_100K/``, ``VG_100K_2/``, ``train2014/``, ``val2014/``).
``answers`` is ``[str(answer)]``; ``question_type`` is ``simple`` or ``complex`` from ``issimple``, or
``count`` when a file lacks the flag; ``candidates`` are ``"0"`` .. ``str(max_count)`` (TallyQA answers
run 0-15). Extra column ``data_source``. Splits: ``train``, ``test``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import datasets

from vljepa.data.adapters.common import RowReader, build_dataset, convert_rows, expect_type, read_json
from vljepa.data.images import BadInputReport

TALLYQA_SPLITS = ("train", "test")
TALLYQA_EXTRA_FEATURES = {"data_source": datasets.Value("string")}


def load_tallyqa(
    split: str = "train",
    *,
    root: str | Path | None = None,
    questions_file: str | Path | None = None,
    image_root: str | Path | None = None,
    max_count: int = 15,
    on_bad_input: str | None = None,
    report: BadInputReport | None = None,
    check_images: bool = True,
) -> datasets.Dataset:
    """TallyQA questions from ``root/<split>.json``; images under ``image_root`` (default ``root``)."""
    if split not in TALLYQA_SPLITS:
        raise ValueError(f"TallyQA splits are {list(TALLYQA_SPLITS)}; got split={split!r}")
    if root is None and (questions_file is None or image_root is None):
        raise ValueError("tallyqa needs root= or both questions_file= and image_root=")
    if max_count < 1:
        raise ValueError(f"max_count must be >= 1, got {max_count}")
    path = Path(questions_file or Path(root) / f"{split}.json")
    images = Path(image_root or root)
    records = expect_type(read_json(path, what="TallyQA questions file"), list, where=str(path))
    reader = RowReader(
        source=str(path), split=split, on_bad_input=on_bad_input, report=report, check_images=check_images
    )
    candidates = [str(count) for count in range(max_count + 1)]

    def convert(record: Any, row: int | str) -> dict[str, Any]:
        answer = reader.require(record, "answer", row, kind=int)
        if isinstance(answer, bool) or not 0 <= answer <= max_count:
            raise reader.bad(row, "missing", f"field 'answer' must be an integer in 0..{max_count}, got {answer!r}")
        image = reader.require(record, "image", row, kind=str)
        simple = record.get("issimple")
        question_type = "count" if simple is None else ("simple" if simple else "complex")
        return {
            "image": reader.image(images, image, row),
            "question": reader.require(record, "question", row, kind=str),
            "answers": [str(answer)],
            "question_type": question_type,
            "candidates": candidates,
            "image_id": str(reader.require(record, "image_id", row)),
            "question_id": str(reader.require(record, "question_id", row)),
            "data_source": str(reader.require(record, "data_source", row, kind=str)),
        }

    rows = convert_rows(enumerate(records), convert)
    return build_dataset(rows, task="vqa", split=split, extra_features=TALLYQA_EXTRA_FEATURES,
                         unique_field="question_id", reader=reader)
