"""COCO Captions with the Karpathy split (``dataset_coco.json``) -> ``captioning`` schema.

Expected layout (pass ``annotation_file`` / ``image_root`` for another one)::

    <root>/dataset_coco.json
    <root>/train2014/COCO_train2014_000000000009.jpg
    <root>/val2014/COCO_val2014_000000391895.jpg

``image_id`` is the COCO id (``cocoid``) as a string. Splits: ``train`` (with ``restval`` unless
``include_restval=False``), ``validation``, ``test`` (5,000 images each), ``restval``.

Example:
    >>> from vljepa.data import load_vl_dataset
    >>> test = load_vl_dataset("coco-karpathy", split="test", root="/data/coco")  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

import datasets

from vljepa.data.adapters.karpathy import load_karpathy_captions
from vljepa.data.images import BadInputReport


def load_coco_karpathy(
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
    """COCO Karpathy captions; ``on_bad_input`` defaults to ``skip`` for train and ``error`` otherwise."""
    if root is None and (annotation_file is None or image_root is None):
        raise ValueError(
            "coco-karpathy needs root= (holding dataset_coco.json, train2014/, val2014/) "
            "or both annotation_file= and image_root="
        )
    return load_karpathy_captions(
        annotation_file or Path(root) / "dataset_coco.json",
        image_root or Path(root),
        split,
        dataset_name="COCO",
        image_id_field="cocoid",
        use_filepath=True,
        include_restval=include_restval,
        on_bad_input=on_bad_input,
        report=report,
        check_images=check_images,
    )
