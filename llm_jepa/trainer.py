"""``LLMJepaTrainer``: a ``transformers.Trainer`` whose loss is the LLM-JEPA objective.

``compute_loss`` returns ``gamma * L_LM + lambda * d(Pred(Enc(Text)), Enc(Code))`` (see
:mod:`llm_jepa.objective`) and the trainer logs the terms separately as ``lm_loss`` and ``jepa_loss`` (and
``eval_lm_loss`` / ``eval_jepa_loss``), plus ``jepa_term_rate`` (fraction of micro-batches where the JEPA term
ran; below 1 with ``jepa_dropout``) and, in packed mode, ``text_fallback_rate`` (examples whose Text view
needed its own block). Distribution, mixed precision and checkpointing are the Trainer's (Accelerate), with
these additions:

* launch check: a process group smaller than the launcher's ``WORLD_SIZE`` is an error (``use_cpu`` defaults
  to True without an accelerator, so ``accelerate launch`` on a CPU machine gives one gloo group);
* atomic checkpoints: ``checkpoint-N`` is written as ``_tmp-checkpoint-N/checkpoint-N`` and renamed into place
  when complete, so a kill mid-save never leaves a folder that ``resume_from_checkpoint`` would pick; a failed
  save removes the partial folder and names the intact previous checkpoint and the free space against a
  checkpoint's size: a full disk (``OSError``/``SafetensorError``/``RuntimeError`` from the writers) is an
  ``OSError(ENOSPC)``, any other error a :class:`~jepa_core.diskspace.CheckpointSaveError`;
* ``on_nonfinite_loss``: a NaN/inf loss on any process stops training, or skips that optimizer step;
* collapse statistics of the predictions and targets at each logging step (``collapse_monitor``);
* Hub pushes (``push_to_hub``) upload only the allow-list of :func:`jepa_core.hub.select_upload_files` (no pickle
  files, checkpoints, ``run_info.json`` or credentials; TensorBoard logs with ``hub_include_logs``) and log what
  they leave out.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import torch
import transformers.trainer as hf_trainer
from transformers import Trainer, TrainerCallback
from transformers.trainer import TRAINER_STATE_NAME, TRAINING_ARGS_NAME
from transformers.trainer_utils import (
    PREFIX_CHECKPOINT_DIR,
    HubStrategy,
    get_last_checkpoint,
    rotate_checkpoints,
)
from transformers.utils.hub import PushInProgress

from jepa_core.diskspace import (
    CheckpointSaveError,
    folder_bytes,
    free_bytes,
    is_disk_full,
    space_report,
    tensor_bytes,
)
from jepa_core.distributed import check_world_size
from jepa_core.hub import PICKLE_SUFFIXES, exact_patterns, log_skipped, select_upload_files
from jepa_core.model_card import render_model_card
from jepa_core.monitoring import CollapseMonitorConfig, EmbeddingMonitor, NonFiniteLossError
from jepa_core.rundir import atomic_write_text
from llm_jepa.arguments import LLMJepaTrainingArguments
from llm_jepa.loading import SavedLLMJepaConfig
from llm_jepa.model_card import llm_jepa_card_info
from llm_jepa.objective import LLMJepaOutput, jepa_term_scheduled, llm_jepa_loss

logger = logging.getLogger(__name__)

# A checkpoint is written into "_tmp-checkpoint-N" first: get_last_checkpoint, checkpoint rotation and Hub
# uploads (ignore pattern "_*") all skip that name.
STAGING_PREFIX = "_tmp-"
HUB_IGNORE_PATTERNS = ["_*", f"{PREFIX_CHECKPOINT_DIR}-*", *(f"*{suffix}" for suffix in PICKLE_SUFFIXES)]
MONITORED_STREAMS = ("jepa_prediction", "jepa_target")


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


class _BeforeOptimizerStep(TrainerCallback):
    """Runs the trainer's non-finite loss check right before each optimizer step."""

    def __init__(self, trainer: LLMJepaTrainer) -> None:
        self.trainer = trainer

    def on_pre_optimizer_step(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        self.trainer._check_nonfinite_loss(model)


class LLMJepaTrainer(Trainer):
    """Trainer for the LLM-JEPA objective; ``args`` must be :class:`LLMJepaTrainingArguments`.

    Args:
        saved_config: written as ``llm_jepa_config.json`` into every saved model folder (checkpoints too).
        data_description: one line naming the training data, for the model card.
        dataset_name: the data source (e.g. ``regex-synth``), for the model card's metadata.
        collapse_config: thresholds of the collapse monitors (default ``CollapseMonitorConfig()``).
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
        collapse_config: CollapseMonitorConfig | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        if not isinstance(self.args, LLMJepaTrainingArguments):
            raise TypeError(f"LLMJepaTrainer needs LLMJepaTrainingArguments, got {type(self.args).__name__}")
        check_world_size(
            self.accelerator.num_processes, hint="leave use_cpu unset (or pass --use_cpu true)"
        )
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
        self._nonfinite_batches: torch.Tensor | float = 0.0  # micro-batches with a NaN/inf loss this step
        self.skipped_nonfinite_steps = 0
        self._staging_dir: str | None = None
        self.monitors = {
            name: EmbeddingMonitor(name, config=collapse_config) for name in MONITORED_STREAMS
        } if self.args.collapse_monitor else {}
        self.add_callback(_BeforeOptimizerStep(self))

    # ---- loss -------------------------------------------------------------------------------------------

    def jepa_term_this_step(self) -> bool:
        """Whether the JEPA term runs on the current optimiser step (same answer on every process)."""
        return jepa_term_scheduled(self.args.seed, self.state.global_step, self.args.jepa_dropout)

    def compute_loss(
        self, model: Any, inputs: dict[str, Any], return_outputs: bool = False, num_items_in_batch: Any = None
    ) -> torch.Tensor | tuple[torch.Tensor, LLMJepaOutput]:
        compute_jepa = self.jepa_term_this_step() if model.training else True
        gather = self.args.jepa_loss == "infonce" and self.accelerator.num_processes > 1
        output = llm_jepa_loss(
            model, inputs, self.args, compute_jepa=compute_jepa,
            gather_fn=self.accelerator.gather if gather else None, rank=self.accelerator.process_index,
        )
        (self._train_terms if model.training else self._eval_terms).add(output, inputs)
        if model.training:
            # A tensor: no device sync per micro-batch; checked once before the optimizer step.
            self._nonfinite_batches = self._nonfinite_batches + (~torch.isfinite(output.loss.detach())).float()
            if output.prediction is not None and self.monitors:
                self.monitors["jepa_prediction"].update(output.prediction)
                self.monitors["jepa_target"].update(output.target)
        return (output.loss, output) if return_outputs else output.loss

    def _check_nonfinite_loss(self, model: Any) -> None:
        """Before the optimizer step: if any process saw a NaN/inf loss, stop, or drop this step everywhere."""
        count = torch.as_tensor(self._nonfinite_batches, dtype=torch.float32, device=self.args.device)
        self._nonfinite_batches = 0.0
        if self.accelerator.num_processes > 1:  # every process takes the same decision
            count = self.accelerator.reduce(count, reduction="sum")
        if count.item() == 0:
            return
        step = self.state.global_step + 1  # the step being taken, as logs and checkpoint-N count it
        if self.args.on_nonfinite_loss == "stop":
            raise NonFiniteLossError(
                f"non-finite training loss (NaN/inf) at global step {step} ({int(count.item())} micro-batch(es) over "
                "all processes); the parameters were not updated with it. Lower learning_rate, set max_grad_norm, "
                "check the data of this step, then resume from the last checkpoint (--resume_from_checkpoint "
                "true), or set on_nonfinite_loss: skip to drop such steps."
            )
        if self.accelerator.scaler is None:  # (a GradScaler skips a step with non-finite gradients itself)
            for param in model.parameters():
                param.grad = None  # the optimizer skips parameters without gradient: no update, no state change
        self.skipped_nonfinite_steps += 1
        logger.warning(
            "non-finite training loss at global step %d: skipped this optimizer step (no parameter or optimizer "
            "state change); %d step(s) skipped so far", step, self.skipped_nonfinite_steps,
        )

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
        if "loss" in logs and self.is_world_process_zero():
            for monitor in self.monitors.values():  # this process's recent embeddings
                logs.update({k: round(v, 6) for k, v in monitor.compute().items()})
        if ("loss" in logs or "train_runtime" in logs) and self.args.on_nonfinite_loss == "skip":
            logs["skipped_nonfinite_steps"] = self.skipped_nonfinite_steps
        if "train_runtime" in logs:
            logs["num_processes"] = self.accelerator.num_processes
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

    def _get_output_dir(self, trial: Any) -> str:
        # While a checkpoint is being saved, the Trainer writes it under the staging folder.
        return self._staging_dir or super()._get_output_dir(trial)

    def _save_checkpoint(self, model: Any, trial: Any) -> None:
        """Write ``checkpoint-N`` atomically: into ``_tmp-checkpoint-N`` first, renamed when complete."""
        run_dir = super()._get_output_dir(trial)
        name = f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"
        final, staging = os.path.join(run_dir, name), os.path.join(run_dir, STAGING_PREFIX + name)
        previous = get_last_checkpoint(run_dir) if os.path.isdir(run_dir) else None
        if self.args.should_save:  # leftovers of saves that were killed
            for stale in Path(run_dir).glob(f"{STAGING_PREFIX}{PREFIX_CHECKPOINT_DIR}-*"):
                shutil.rmtree(stale, ignore_errors=True)
        self.accelerator.wait_for_everyone()
        self._staging_dir = staging
        try:
            super()._save_checkpoint(model, trial)
        except Exception as err:
            if self.args.should_save:
                shutil.rmtree(staging, ignore_errors=True)
            raise self._save_failure(err, final, staging, previous) from err
        finally:
            self._staging_dir = None
        self.accelerator.wait_for_everyone()  # every process has written its files (RNG states)
        if self.args.should_save:
            if os.path.isdir(final):  # an older save of this step (e.g. a run restarted from scratch)
                shutil.rmtree(final)
            os.replace(os.path.join(staging, name), final)
            os.rmdir(staging)
            best = self.state.best_model_checkpoint
            if best is not None and best.startswith(staging):
                self.state.best_model_checkpoint = best.replace(os.path.join(staging, name), final)
                self.state.save_to_json(os.path.join(final, TRAINER_STATE_NAME))
            rotate_checkpoints(
                output_dir=run_dir, save_total_limit=self.args.save_total_limit,
                best_model_checkpoint=self.state.best_model_checkpoint, use_mtime=True,
            )
        self.accelerator.wait_for_everyone()

    def _save_failure(self, err: Exception, final: str, staging: str, previous: str | None) -> Exception:
        """The error to raise for a failed checkpoint save (its partial folder already removed): a full disk is an
        ``OSError(ENOSPC)`` naming the folder and the space needed, anything else a ``CheckpointSaveError``."""
        needed = folder_bytes(previous) if previous else tensor_bytes([self.model, self.optimizer])
        space = space_report(os.path.dirname(final), needed)
        kept = (
            f"the previous checkpoint {previous} is intact (resume with --resume_from_checkpoint {previous})"
            if previous else "there is no earlier checkpoint"
        )
        if is_disk_full(err, free=free_bytes(os.path.dirname(final)), needed=needed):
            return OSError(
                errno.ENOSPC, f"no space left on device while saving checkpoint {final} ({type(err).__name__}: "
                f"{err}); the partial folder {staging} was removed and {kept}. {space} Free disk space (or lower "
                "save_total_limit) and resume."
            )
        return CheckpointSaveError(
            f"could not write checkpoint {final} ({type(err).__name__}: {err}); the partial folder {staging} was "
            f"removed and {kept}. {space}"
        )

    # ---- publishing -------------------------------------------------------------------------------------

    def _upload_output_dir(self, commit_message: str, *, blocking: bool, token: str | None = None,
                           revision: str | None = None) -> Any:
        """Upload the allow-listed files of ``output_dir`` (no checkpoints, ``_*`` files or pickles)."""
        files, skipped = select_upload_files(
            self.args.output_dir, ignore_patterns=HUB_IGNORE_PATTERNS, include_logs=self.args.hub_include_logs
        )
        log_skipped(self.args.output_dir, skipped)
        return hf_trainer.hf_api().upload_folder(
            repo_id=self.hub_model_id, folder_path=self.args.output_dir, commit_message=commit_message,
            token=token if token is not None else self.args.hub_token, run_as_future=not blocking,
            allow_patterns=exact_patterns(files),
            ignore_patterns=HUB_IGNORE_PATTERNS, revision=revision if revision is not None else self.args.hub_revision,
        )

    def _push_from_checkpoint(self, checkpoint_folder: str) -> None:
        """``hub_strategy: every_save``: publish the model files of a new checkpoint, never its training state."""
        if not self.is_world_process_zero() or self.args.hub_strategy == HubStrategy.END:
            return
        if not self.args.hub_always_push and self.push_in_progress is not None and not self.push_in_progress.is_done():
            return
        self.callback_handler.on_push_begin(self.args, self.state, self.control)
        for path in Path(checkpoint_folder).iterdir():
            skip = path.name.endswith(PICKLE_SUFFIXES) or path.name in (TRAINER_STATE_NAME, "README.md")
            if path.is_file() and not skip:
                shutil.copy(path, Path(self.args.output_dir) / path.name)
        job = self._upload_output_dir(f"Training in progress, step {self.state.global_step}", blocking=False)
        if self.push_in_progress is None or self.push_in_progress.is_done():
            self.push_in_progress = PushInProgress([job])
        else:
            self.push_in_progress.jobs.append(job)

    def push_to_hub(self, commit_message: str | None = "End of training", blocking: bool = True,
                    token: str | None = None, revision: str | None = None, private: bool | None = None,
                    **kwargs: Any) -> Any:
        """Save the model and the LLM-JEPA card into ``output_dir`` and upload it (no pickle files)."""
        self.callback_handler.on_push_begin(self.args, self.state, self.control)
        if self.hub_model_id is None:
            self.init_hf_repo(token=token, private=private)
        self.save_model(_internal_call=True)
        if not self.is_world_process_zero():
            return None
        self.create_model_card()
        self._finish_current_push()
        return self._upload_output_dir(commit_message, blocking=blocking, token=token, revision=revision)

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
