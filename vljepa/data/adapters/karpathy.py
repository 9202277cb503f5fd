"""Karpathy-split caption files (``dataset_coco.json``, ``dataset_flickr30k.json``) -> ``captioning``.

Upstream layout (from the NeuralTalk release)::

    {"dataset": "coco",
     "images": [{"filepath": "val2014", "filename": "COCO_val2014_000000391895.jpg", "imgid": 0,
                 "split": "test", "cocoid": 391895, "sentids": [770337, ...],
                 "sentences": [{"raw": "A man with a red helmet ...", "tokens": [...], "imgid": 0,
                                "sentid": 770337}, ...]}, ...]}

Flickr30k entries have no ``filepath`` and no ``cocoid``. Image splits are ``train``, ``restval``,
``val``, ``test``; here ``validation`` means ``val``, and ``train`` includes ``restval`` unless
``include_restval=False`` (the usual 113k-image COCO training set).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import datasets

from vljepa.data.adapters.common import (
    DataFormatError,
    RowReader,
    SkipRow,
    build_dataset,
    expect_type,
    read_json,
)
from vljepa.data.images import BadInputReport

KARPATHY_SPLITS = ("train", "validation", "test", "restval")
KARPATHY_EXTRA_FEATURES = {"file_name": datasets.Value("string")}


def _upstream_splits(split: str, include_restval: bool) -> set[str]:
    if split not in KARPATHY_SPLITS:
        raise ValueError(f"Karpathy splits are {list(KARPATHY_SPLITS)}; got split={split!r}")
    if split == "train":
        return {"train", "restval"} if include_restval else {"train"}
    return {"val"} if split == "validation" else {split}


def load_karpathy_captions(
    annotation_file: str | Path,
    image_root: str | Path,
    split: str,
    *,
    dataset_name: str,
    image_id_field: str | None,
    use_filepath: bool,
    include_restval: bool = True,
    on_bad_input: str | None = None,
    report: BadInputReport | None = None,
    check_images: bool = True,
) -> datasets.Dataset:
    """Rows ``image``, ``captions`` (the ``raw`` sentences, stripped), ``image_id``, ``file_name``.

    ``image_id_field``: the entry field that gives ``image_id`` (``"cocoid"``), or None to use the file
    name without extension. ``use_filepath``: images live at ``image_root/filepath/filename``.
    """
    wanted = _upstream_splits(split, include_restval)
    data = read_json(annotation_file, what=f"{dataset_name} Karpathy annotation file")
    where = str(annotation_file)
    expect_type(data, dict, where=where)
    if "images" not in data:
        raise DataFormatError(f"{where}: missing top-level field 'images' (is this a Karpathy split file?)")
    entries = expect_type(data["images"], list, where=f"{where} field 'images'")
    reader = RowReader(
        source=where, split=split, on_bad_input=on_bad_input, report=report, check_images=check_images
    )
    image_root = Path(image_root)
    rows: list[dict[str, Any]] = []
    for row, entry in enumerate(entries):
        try:
            if reader.require(entry, "split", row) not in wanted:
                continue
            filename = reader.require(entry, "filename", row, kind=str)
            name = f"{reader.require(entry, 'filepath', row, kind=str)}/{filename}" if use_filepath else filename
            sentences = reader.require(entry, "sentences", row, kind=list)
            captions = []
            for number, sentence in enumerate(sentences):
                raw = sentence.get("raw") if isinstance(sentence, dict) else None
                if not isinstance(raw, str) or not raw.strip():
                    raise reader.bad(row, "missing", f"sentences[{number}] has no 'raw' text")
                captions.append(raw.strip())
            if not captions:
                raise reader.bad(row, "missing", "field 'sentences' is empty")
            image_id = (
                str(reader.require(entry, image_id_field, row)) if image_id_field else Path(filename).stem
            )
            rows.append(
                {
                    "image": reader.image(image_root, name, row),
                    "captions": captions,
                    "image_id": image_id,
                    "file_name": filename,
                }
            )
        except SkipRow:
            continue
    return build_dataset(
        rows,
        task="captioning",
        split=split,
        extra_features=KARPATHY_EXTRA_FEATURES,
        unique_field="image_id",
        reader=reader,
    )
