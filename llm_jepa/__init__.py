"""LLM-JEPA on the Hugging Face stack (arXiv 2509.14252): ``gamma * L_LM + lambda * d(Pred(Enc(Text)), Enc(Code))``.

Importing the package applies ``jepa_core``'s environment shims first. Public names are imported lazily so
``llm-jepa --help`` stays fast:

* :func:`llm_jepa.train.run_training` - recipe + overrides -> trained output folder
* :func:`llm_jepa.modeling.load_for_inference` - output folder -> (model, tokenizer)
* :func:`llm_jepa.objective.llm_jepa_loss`, :class:`llm_jepa.trainer.LLMJepaTrainer`
* :class:`llm_jepa.config.JepaObjectiveConfig`, :class:`llm_jepa.config.LLMJepaTrainingArguments`
"""

from __future__ import annotations

import importlib
from typing import Any

import jepa_core  # noqa: F401  (torchvision workaround must run before timm / transformers vision imports)

_LAZY = {
    "run_training": "llm_jepa.train",
    "load_for_inference": "llm_jepa.modeling",
    "llm_jepa_loss": "llm_jepa.objective",
    "LLMJepaOutput": "llm_jepa.objective",
    "LLMJepaTrainer": "llm_jepa.trainer",
    "LLMJepaCollator": "llm_jepa.packing",
    "ViewTokenizer": "llm_jepa.views",
    "JepaObjectiveConfig": "llm_jepa.config",
    "LLMJepaTrainingArguments": "llm_jepa.config",
    "ModelArguments": "llm_jepa.config",
    "DataArguments": "llm_jepa.config",
    "jepa_distance": "llm_jepa.loss",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'llm_jepa' has no attribute {name!r}")
