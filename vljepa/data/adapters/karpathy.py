"""Karpathy-split caption files -> ``captioning`` schema: COCO (``dataset_coco.json``) and Flickr30k
(``dataset_flickr30k.json``) read by one reader, each corpus described by a :class:`KarpathyCorpus`.

Upstream layout (from the NeuralTalk release)::

    {"dataset": "coco",
     "images": [{"filepath": "val2014", "filename": "COCO_val2014_000000391895.jpg", "imgid": 0,
                 "split": "test", "cocoid": 391895, "sentids": [770337, ...],
                 "sentences": [{"raw": "A man with a red helmet ...", "tokens": [...], "imgid": 0,
                                "sentid": 770337}, ...]}, ...]}

Flickr30k entries have no ``filepath`` and no ``cocoid``. Image splits are ``train``, ``restval``,
``val``, ``test``; here ``validation`` means ``val``, and ``train`` includes ``restval`` unless
``include_restval=False`` (the usual 113k-image COCO training set).

Expected folders (pass ``annotation_file`` / ``image_root`` for another layout)::

    <root>/dataset_coco.json                 COCO: image_id is the COCO id (``cocoid``) as a string;
    <root>/train2014/COCO_train2014_000000000009.jpg   test and validation hold 5,000 images each
    <root>/val2014/COCO_val2014_000000391895.jpg

    <root>/dataset_flickr30k.json            Flickr30k: image_id is the file name without extension;
    <root>/flickr30k-images/1000092795.jpg   train 29,000 images, validation and test 1,000 each

Example:
    >>> from vljepa.data import load_vl_dataset
    >>> test = load_vl_dataset("coco-karpathy", split="test", root="/data/coco")  # doctest: +SKIP
    >>> test = load_vl_dataset("flickr30k", split="test", root="/data/flickr30k")  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
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


@dataclass(frozen=True)
class KarpathyCorpus:
    """Where one corpus keeps its Karpathy file and images, and how its entries name an image."""

    name: str  # in messages: "COCO"
    registry_name: str  # the load_vl_dataset name
    annotation_name: str  # the Karpathy file, under root
    image_folder: str  # images under root/image_folder ("" for root itself)
    image_id_field: str | None  # the entry field giving image_id; None: the file name without extension
    use_filepath: bool  # images live at image_root/<entry filepath>/<filename>
    has_restval: bool  # whether `train` can include the `restval` images
    root_holds: str  # what root= must hold, for the error message


COCO_KARPATHY = KarpathyCorpus(
    name="COCO", registry_name="coco-karpathy", annotation_name="dataset_coco.json", image_folder="",
    image_id_field="cocoid", use_filepath=True, has_restval=True,
    root_holds="dataset_coco.json, train2014/, val2014/",
)
FLICKR30K = KarpathyCorpus(
    name="Flickr30k", registry_name="flickr30k", annotation_name="dataset_flickr30k.json",
    image_folder="flickr30k-images", image_id_field=None, use_filepath=False, has_restval=False,
    root_holds="dataset_flickr30k.json and flickr30k-images/",
)


def _upstream_splits(split: str, include_restval: bool) -> set[str]:
    if split not in KARPATHY_SPLITS:
        raise ValueError(f"Karpathy splits are {list(KARPATHY_SPLITS)}; got split={split!r}")
    if split == "train":
        return {"train", "restval"} if include_restval else {"train"}
    return {"val"} if split == "validation" else {split}


def load_karpathy_captions(
    corpus: KarpathyCorpus,
    split: str = "train",
    *,
    root: str | Path | None = None,
    annotation_file: str | Path | None = None,
    image_root: str | Path | None = None,
    include_restval: bool = True,
    on_bad_input: str | None = None,
    report: BadInputReport | None = None,
    check_images: bool = True,
) -> datasets.Dataset:
    """Rows ``image``, ``captions`` (the ``raw`` sentences, stripped), ``image_id``, ``file_name``.

    Files come from ``root`` in the corpus's layout, or from ``annotation_file`` and ``image_root``.
    ``on_bad_input`` defaults to ``skip`` for train and ``error`` otherwise.
    """
    if root is None and (annotation_file is None or image_root is None):
        raise ValueError(
            f"{corpus.registry_name} needs root= (holding {corpus.root_holds}) "
            "or both annotation_file= and image_root="
        )
    annotation_file = annotation_file or Path(root) / corpus.annotation_name
    image_root = image_root or Path(root) / corpus.image_folder
    wanted = _upstream_splits(split, include_restval and corpus.has_restval)
    data = read_json(annotation_file, what=f"{corpus.name} Karpathy annotation file")
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
            name = (
                f"{reader.require(entry, 'filepath', row, kind=str)}/{filename}" if corpus.use_filepath else filename
            )
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
                str(reader.require(entry, corpus.image_id_field, row)) if corpus.image_id_field else Path(filename).stem
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


def load_coco_karpathy(split: str = "train", **kwargs: Any) -> datasets.Dataset:
    """COCO Karpathy captions (``coco-karpathy``); keyword arguments as :func:`load_karpathy_captions`."""
    return load_karpathy_captions(COCO_KARPATHY, split, **kwargs)


def load_flickr30k(split: str = "train", **kwargs: Any) -> datasets.Dataset:
    """Flickr30k Karpathy captions (``flickr30k``); keyword arguments as :func:`load_karpathy_captions`."""
    return load_karpathy_captions(FLICKR30K, split, **kwargs)
