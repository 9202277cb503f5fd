"""Flickr30k with the Karpathy split (``dataset_flickr30k.json``) -> ``captioning`` schema.

Expected layout (pass ``annotation_file`` / ``image_root`` for another one)::

    <root>/dataset_flickr30k.json
    <root>/flickr30k-images/1000092795.jpg

``image_id`` is the file name without extension. Splits: ``train`` (29,000 images), ``validation``
and ``test`` (1,000 each).

Example:
    >>> from vljepa.data import load_vl_dataset
    >>> test = load_vl_dataset("flickr30k", split="test", root="/data/flickr30k")  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

import datasets

from vljepa.data.adapters.karpathy import load_karpathy_captions
from vljepa.data.images import BadInputReport


def load_flickr30k(
    split: str = "train",
    *,
    root: str | Path | None = None,
    annotation_file: str | Path | None = None,
    image_root: str | Path | None = None,
    on_bad_input: str | None = None,
    report: BadInputReport | None = None,
    check_images: bool = True,
) -> datasets.Dataset:
    """Flickr30k Karpathy captions; ``on_bad_input`` defaults to ``skip`` for train, ``error`` otherwise."""
    if root is None and (annotation_file is None or image_root is None):
        raise ValueError(
            "flickr30k needs root= (holding dataset_flickr30k.json and flickr30k-images/) "
            "or both annotation_file= and image_root="
        )
    return load_karpathy_captions(
        annotation_file or Path(root) / "dataset_flickr30k.json",
        image_root or Path(root) / "flickr30k-images",
        split,
        dataset_name="Flickr30k",
        image_id_field=None,
        use_filepath=False,
        include_restval=False,
        on_bad_input=on_bad_input,
        report=report,
        check_images=check_images,
    )
