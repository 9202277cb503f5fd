"""Adapters from real corpora to the task schemas.

They read the upstream files as published (no conversion step) and build ``datasets.Dataset`` rows
whose ``image`` holds the image path; images are decoded lazily. Use them through
:func:`vljepa.data.load_vl_dataset` (``"coco-karpathy"``, ``"flickr30k"``, ``"vqav2"``, ``"gqa"``,
``"pope"``, ``"tallyqa"``, ``"folder"``) or import the ``load_*`` function directly.

* :mod:`~.common`: file/row/field errors and the row loop every adapter uses (start here).
* :mod:`~.karpathy`: COCO and Flickr30k Karpathy splits (one reader, a ``KarpathyCorpus`` each).
* :mod:`~.vqav2`, :mod:`~.gqa`, :mod:`~.pope`, :mod:`~.tallyqa`: VQA corpora; :mod:`~.folder`: image folders.
"""

from vljepa.data.adapters.common import DataFormatError

__all__ = ["DataFormatError"]
