"""VL-JEPA (arXiv 2512.10942) on the Hugging Face stack: predict the embedding of a target text from an image
and a query, with a frozen vision backbone, a bidirectional predictor cut from a causal LM and a
sentence-transformers target encoder; plus a CLIP/LiT dual-encoder baseline with the same encoders.

    >>> from vljepa import VLJEPAModel
    >>> model = VLJEPAModel.from_pretrained("runs/demo/vljepa/model")          # doctest: +SKIP
    >>> model.answer([image], ["what color is the shape?"], ["red", "blue", "green"])

What is where (start with ``modeling.py``, then ``encoders/predictor.py``):

* the model: :mod:`~vljepa.configuration` (``VLJEPAConfig``, saved as ``config.json``), :mod:`~vljepa.modeling`
  (``VLJEPAModel``), :mod:`~vljepa.baseline` (``DualEncoderModel``), :mod:`~vljepa.shared_space` (what both
  share), :mod:`~vljepa.losses` (InfoNCE / cosine / L2), :mod:`~vljepa.inference` (batched scoring helpers),
  :mod:`~vljepa.persistence` (``save_pretrained`` / ``from_pretrained`` / ``load_pretrained``);
* :mod:`vljepa.encoders` (X-encoder, predictor, Y-encoder), :mod:`vljepa.data` (datasets),
  :mod:`vljepa.training` (the Accelerate trainer), :mod:`vljepa.decoding` (embedding -> text);
* :mod:`~vljepa.evaluate` (eval runners on a model) and :mod:`~vljepa.cli` (the ``vljepa`` command).

Attributes are imported lazily, so ``import vljepa`` imports no torch. ``AutoConfig`` / ``AutoModel`` load saved
folders once :mod:`vljepa.modeling` is imported (``from vljepa import VLJEPAModel``) or after
``vljepa.register_auto_classes()``.
"""

from __future__ import annotations

import importlib
from typing import Any

import jepa_core  # noqa: F401  (installs the torchvision import hook; see jepa_core's docstring)

_EXPORTS = {
    "VLJEPAConfig": "vljepa.configuration",
    "VLJEPAModel": "vljepa.modeling",
    "VLJEPAOutput": "vljepa.modeling",
    "DualEncoderConfig": "vljepa.baseline",
    "DualEncoderModel": "vljepa.baseline",
    "FeatureCache": "vljepa.training.feature_cache",
    "VLJEPALossOutput": "vljepa.losses",
    "load_pretrained": "vljepa.persistence",
    "register_auto_classes": "vljepa.persistence",
}

__all__ = [  # the names of _EXPORTS
    "DualEncoderConfig", "DualEncoderModel", "FeatureCache", "VLJEPAConfig", "VLJEPALossOutput", "VLJEPAModel",
    "VLJEPAOutput", "load_pretrained", "register_auto_classes",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'vljepa' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
