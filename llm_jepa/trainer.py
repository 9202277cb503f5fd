"""``LLMJepaTrainer``: a ``transformers.Trainer`` whose loss is the LLM-JEPA objective.

``compute_loss`` returns ``gamma * L_LM + lambda * d(Pred(Enc(Text)), Enc(Code))`` (see
:mod:`llm_jepa.objective`) and the trainer logs the terms separately as ``lm_loss`` and ``jepa_loss`` (and
``eval_lm_loss`` / ``eval_jepa_loss``), plus ``jepa_term_rate`` (fraction of micro-batches where the JEPA term
ran; below 1 with ``jepa_dropout``) and, in packed mode, ``text_fallback_rate`` (examples whose Text view
needed its own block). Distribution, mixed precision and checkpointing are the Trainer's (Accelerate).
"""

from __future__ import annotations

import json
import logging
import os
import random
from pathlib import Path
from typing import Any

import torch
from transformers import Trainer
from transformers.trainer import TRAINING_ARGS_NAME

from jepa_core.model_card import render_model_card
from jepa_core.rundir import atomic_write_text
from llm_jepa.config import LLMJepaTrainingArguments
from llm_jepa.model_card import llm_jepa_card_info
from llm_jepa.modeling import SavedLLMJepaConfig
from llm_jepa.objective import LLMJepaOutput, llm_jepa_loss

logger = logging.getLogger(__name__)


def jepa_term_scheduled(seed: int, step: int, dropout: float) -> bool:
    """Whether the JEPA term runs on optimiser step ``step``: a draw seeded by (seed, step) alone, so every
    process (and a resumed run) makes the same choice; it runs with probability ``1 - dropout``."""
    if dropout <= 0.0:
        return True
    if dropout >= 1.0:
        return False
    return random.Random(seed * 1_000_003 + step).random() >= dropout


class _TermAccumulator:
    """Running sums of the loss terms between two logging events (tensors stay on device)."""

    def __init__(self) -> None:
        self.lm_sum = 0.0
        self.jepa_sum = 0.0
        self.batches = 0
        self.jepa_batches = 0
        self.examples = 0
        self.fallbacks = 0

    def add(self, output: LLMJepaOutput, inputs: dict[str, Any]) -> None:
        self.lm_sum = self.lm_sum + output.lm_loss.detach().float()
        self.batches += 1
        if output.jepa_loss is not None:
            self.jepa_sum = self.jepa_sum + output.jepa_loss.detach().float()
            self.jepa_batches += 1
        if "text_fallback" in inputs:
            self.examples += int(inputs["text_fallback"].numel())
            self.fallbacks = self.fallbacks + inputs["text_fallback"].sum()  # a tensor: no device sync per step

    def means(self, reduce: Any, prefix: str = "") -> dict[str, float]:
        """Means over the accumulated micro-batches, averaged over processes by ``reduce``."""
        if not self.batches:
            return {}
        device = self.lm_sum.device if isinstance(self.lm_sum, torch.Tensor) else None
        stats = torch.tensor(
            [float(self.lm_sum), float(self.jepa_sum), self.batches, self.jepa_batches, self.examples,
             float(self.fallbacks)],
            dtype=torch.float64, device=device,
        )
        lm_sum, jepa_sum, batches, jepa_batches, examples, fallbacks = reduce(stats).tolist()
        out = {f"{prefix}lm_loss": lm_sum / batches, f"{prefix}jepa_term_rate": jepa_batches / batches}
        if jepa_batches:
            out[f"{prefix}jepa_loss"] = jepa_sum / jepa_batches
        if examples:
            out[f"{prefix}text_fallback_rate"] = fallbacks / examples
        return out


class LLMJepaTrainer(Trainer):
    """Trainer for the LLM-JEPA objective; ``args`` must be :class:`LLMJepaTrainingArguments`.

    Args:
        saved_config: written as ``llm_jepa_config.json`` into every saved model folder (checkpoints too).
        data_description: one line naming the training data, for the model card.
        dataset_name: the data source (e.g. ``regex-synth``), for the model card's metadata.
        All other arguments are ``transformers.Trainer``'s.
    """

    # compute_loss returns a per-micro-batch mean; the Trainer divides it by the accumulation steps.
    loss_is_scaled_for_ga = False

    def __init__(
        self,
        *args: Any,
        saved_config: SavedLLMJepaConfig | None = None,
        data_description: str = "",
        dataset_name: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        if not isinstance(self.args, LLMJepaTrainingArguments):
            raise TypeError(f"LLMJepaTrainer needs LLMJepaTrainingArguments, got {type(self.args).__name__}")
        if self.args.world_size > 1 and self.args.jepa_dropout > 0 and self.args.ddp_find_unused_parameters is False:
            raise ValueError(
                "jepa_dropout > 0 leaves the [PRED] embeddings unused on skipped steps; with DDP set "
                "ddp_find_unused_parameters: true (or jepa_dropout: 0)"
            )
        self.model_accepts_loss_kwargs = False
        self.saved_config = saved_config
        self.data_description = data_description
        self.dataset_name = dataset_name
        self._train_terms = _TermAccumulator()
        self._eval_terms = _TermAccumulator()

    # ---- loss -------------------------------------------------------------------------------------------

    def jepa_term_this_step(self) -> bool:
        """Whether the JEPA term runs on the current optimiser step (same answer on every process)."""
        return jepa_term_scheduled(self.args.seed, self.state.global_step, self.args.jepa_dropout)

    def compute_loss(
        self, model: Any, inputs: dict[str, Any], return_outputs: bool = False, num_items_in_batch: Any = None
    ) -> torch.Tensor | tuple[torch.Tensor, LLMJepaOutput]:
        compute_jepa = self.jepa_term_this_step() if model.training else True
        output = llm_jepa_loss(model, inputs, self.args, compute_jepa=compute_jepa)
        (self._train_terms if model.training else self._eval_terms).add(output, inputs)
        return (output.loss, output) if return_outputs else output.loss

    def prediction_step(
        self, model: Any, inputs: dict[str, Any], prediction_loss_only: bool, ignore_keys: list[str] | None = None
    ) -> tuple[torch.Tensor, None, None]:
        """Evaluation computes the objective only (generation metrics come from ``llm-jepa eval``)."""
        inputs = self._prepare_inputs(inputs)
        with torch.no_grad(), self.compute_loss_context_manager():
            loss = self.compute_loss(model, inputs)
        return loss.detach(), None, None

    # ---- logging ----------------------------------------------------------------------------------------

    def _reduce_sum(self, stats: torch.Tensor) -> torch.Tensor:
        # Sums and counts add up over processes, so the ratios taken afterwards are global means.
        return self.accelerator.reduce(stats.to(self.args.device), reduction="sum")

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs and self._train_terms.batches:
            logs.update({k: round(v, 6) for k, v in self._train_terms.means(self._reduce_sum).items()})
            self._train_terms = _TermAccumulator()
        super().log(logs, start_time)

    def evaluate(self, eval_dataset: Any = None, ignore_keys: Any = None, metric_key_prefix: str = "eval") -> dict:
        self._eval_terms = _TermAccumulator()
        metrics = super().evaluate(eval_dataset, ignore_keys=ignore_keys, metric_key_prefix=metric_key_prefix)
        terms = self._eval_terms.means(self._reduce_sum, prefix=f"{metric_key_prefix}_")
        if terms:
            metrics.update(terms)
            super().log(dict(terms))
        return metrics

    # ---- saving -----------------------------------------------------------------------------------------

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        output_dir = output_dir if output_dir is not None else self.args.output_dir
        model = self.accelerator.unwrap_model(self.model, keep_torch_compile=False)
        if hasattr(model, "peft_config"):
            # peft would save the whole resized embedding matrix; the [PRED] rows are in the trainable tokens.
            if self.args.should_save:
                os.makedirs(output_dir, exist_ok=True)
                model.save_pretrained(output_dir, state_dict=state_dict, save_embedding_layers=False)
                if self.processing_class is not None:
                    self.processing_class.save_pretrained(output_dir)
        else:
            super()._save(output_dir, state_dict)
            if self.args.should_save:  # the resolved config is in config.yaml; publish no pickles
                (Path(output_dir) / TRAINING_ARGS_NAME).unlink(missing_ok=True)
        if self.args.should_save and self.saved_config is not None:
            self.saved_config.write(output_dir)

    def create_model_card(self, **kwargs: Any) -> None:
        """Write ``README.md`` (lambda, k, d, data, metrics) into ``output_dir``; ``push_to_hub`` uploads it."""
        if not self.is_world_process_zero() or self.saved_config is None:
            return
        output_dir = Path(self.args.output_dir)
        metrics: dict[str, Any] = {}
        for entry in self.state.log_history:
            metrics.update(entry)
        task_file = output_dir / "metrics.json"
        recipe_file = output_dir / "config.yaml"
        info = llm_jepa_card_info(
            saved=self.saved_config,
            data_description=self.data_description,
            training_metrics=metrics,
            recipe=recipe_file.read_text() if recipe_file.is_file() else None,
            task_metrics=json.loads(task_file.read_text()) if task_file.is_file() else None,
            training_args={
                "learning_rate": self.args.learning_rate,
                "num_train_epochs": self.args.num_train_epochs,
                "max_steps": self.args.max_steps,
                "per_device_train_batch_size": self.args.per_device_train_batch_size,
                "gradient_accumulation_steps": self.args.gradient_accumulation_steps,
                "seed": self.args.seed,
            },
            model_name=(self.args.hub_model_id or output_dir.name).split("/")[-1],
            repo_id=self.args.hub_model_id or getattr(self, "hub_model_id", None),
            dataset=self.dataset_name,
        )
        atomic_write_text(output_dir / "README.md", render_model_card(info))
