"""Adapters from real corpora to the task schemas, one file each.

They read the upstream files as published (no conversion step) and build ``datasets.Dataset`` rows
whose ``image`` holds the image path; images are decoded lazily. Use them through
:func:`vljepa.data.load_vl_dataset` (``"coco-karpathy"``, ``"flickr30k"``, ``"vqav2"``, ``"gqa"``,
``"pope"``, ``"tallyqa"``, ``"folder"``) or import the ``load_*`` function directly.
"""

from vljepa.data.adapters.common import DataFormatError

__all__ = ["DataFormatError"]
