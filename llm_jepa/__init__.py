"""LLM-JEPA on the Hugging Face stack (arXiv 2509.14252): ``gamma * L_LM + lambda * d(Pred(Enc(Text)), Enc(Code))``.

Importing the package defines names only (no torch import). Public names are imported lazily so
``llm-jepa --help`` stays fast:

* :func:`llm_jepa.run.run_training` - recipe + overrides -> trained output folder
* :func:`llm_jepa.loading.load_for_inference` - output folder -> (model, tokenizer)
* :func:`llm_jepa.objective.llm_jepa_loss`, :class:`llm_jepa.trainer.LLMJepaTrainer`
* :class:`llm_jepa.arguments.JepaObjectiveConfig`, :class:`llm_jepa.arguments.LLMJepaTrainingArguments`

What is where (start with ``objective.py``, then ``views.py``): :mod:`~llm_jepa.recipe` and
:mod:`~llm_jepa.arguments` (the typed recipe), :mod:`~llm_jepa.data` (every source -> chat ``messages``),
:mod:`~llm_jepa.views` (conversation, Text and Code views, tokenised), :mod:`~llm_jepa.packing` (batches and
the packed block mask), :mod:`~llm_jepa.loss` (distances), :mod:`~llm_jepa.objective` (the loss on a model), :mod:`~llm_jepa.trainer`
(the HF ``Trainer`` subclass), :mod:`~llm_jepa.loading` (load / save models, LoRA, QLoRA), :mod:`~llm_jepa.run`
(``llm-jepa train``), :mod:`~llm_jepa.evaluate` (``llm-jepa eval``), :mod:`~llm_jepa.compare`
(``llm-jepa compare``), :mod:`~llm_jepa.model_card`, :mod:`~llm_jepa.cli`.
"""

from __future__ import annotations

import importlib
from typing import Any

import jepa_core  # noqa: F401  (installs the torchvision import hook; see jepa_core's docstring)

_LAZY = {
    "run_training": "llm_jepa.run",
    "load_for_inference": "llm_jepa.loading",
    "llm_jepa_loss": "llm_jepa.objective",
    "LLMJepaOutput": "llm_jepa.objective",
    "LLMJepaTrainer": "llm_jepa.trainer",
    "LLMJepaCollator": "llm_jepa.packing",
    "ViewTokenizer": "llm_jepa.views",
    "JepaObjectiveConfig": "llm_jepa.recipe",
    "LLMJepaTrainingArguments": "llm_jepa.arguments",
    "LLMJepaModelArguments": "llm_jepa.recipe",
    "DataArguments": "llm_jepa.recipe",
    "jepa_distance": "llm_jepa.loss",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'llm_jepa' has no attribute {name!r}")
