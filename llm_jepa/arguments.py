"""Typed configuration for LLM-JEPA training: :class:`LLMJepaTrainingArguments` = ``transformers.TrainingArguments``
+ the objective (:class:`JepaObjectiveConfig`) + LLM-JEPA's trainer options, one recipe section for both.

The model, data and objective dataclasses live in :mod:`llm_jepa.recipe` (no heavy imports, so ``llm-jepa train
--help`` stays fast) and are re-exported here. The objective fields are what the loss code takes directly.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from transformers import TrainingArguments

from llm_jepa.recipe import (  # noqa: F401  (re-exported: the recipe's light dataclasses)
    BUNDLED_DEFAULT_MODEL,
    DataArguments,
    JepaDistance,
    JepaMode,
    JepaObjectiveConfig,
    LLMJepaModelArguments,
    LLMJepaTrainerOptions,
    ModelDtype,
    NonFiniteLossPolicy,
    PeftMethod,
    TextView,
)


@dataclass
class LLMJepaTrainingArguments(LLMJepaTrainerOptions, TrainingArguments, JepaObjectiveConfig):
    """``transformers.TrainingArguments`` plus the LLM-JEPA objective fields of :class:`JepaObjectiveConfig` and the
    options of :class:`LLMJepaTrainerOptions` (which take precedence over ``TrainingArguments``' fields of the same
    name: ``remove_unused_columns``, ``use_cpu``)."""

    def __post_init__(self) -> None:
        from jepa_core.distributed import resolve_use_cpu

        if self.hub_token:
            logging.getLogger(__name__).warning(
                "--hub_token is visible in the process list and shell history; prefer HF_TOKEN or `hf auth login`. "
                "It is kept in memory only (written as <redacted> in config.yaml and run_info.json)."
            )

        self.use_cpu = resolve_use_cpu(self.use_cpu)  # before TrainingArguments sets up the devices
        if self.on_nonfinite_loss not in NonFiniteLossPolicy.__args__:
            raise ValueError(
                f"on_nonfinite_loss must be one of {NonFiniteLossPolicy.__args__}, got {self.on_nonfinite_loss!r}"
            )
        if self.push_to_hub and str(getattr(self.hub_strategy, "value", self.hub_strategy)) in (
            "checkpoint", "all_checkpoints"
        ):
            raise ValueError(
                f"hub_strategy={self.hub_strategy!r} would publish the checkpoints' pickled optimizer, scheduler "
                "and RNG state (optimizer.pt, scheduler.pt, rng_state.pth); use hub_strategy every_save or end "
                "(checkpoints stay local for resuming)"
            )
        if self.max_steps == 0 or (self.max_steps < 0 and self.num_train_epochs <= 0):
            raise ValueError(
                f"max_steps={self.max_steps}, num_train_epochs={self.num_train_epochs}: this run would train zero "
                "steps. Set max_steps to a positive number, or leave it at -1 and set num_train_epochs > 0"
            )
        if self.remove_unused_columns:
            raise ValueError(
                "remove_unused_columns must be False for LLM-JEPA training (the Text and Code view columns are "
                "not arguments of the model's forward); remove it from the recipe"
            )
        self.validate_objective()
        TrainingArguments.__post_init__(self)
