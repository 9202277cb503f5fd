"""Training loop for VL-JEPA and the dual-encoder baseline, on Accelerate.

Accelerate provides devices, mixed precision, gradient accumulation and the distributed backend; InfoNCE
negatives are gathered across processes. ``mixed_precision`` left unset follows the launcher
(``accelerate launch --mixed_precision`` / the config file); a recipe value wins. Both are logged.

Backends: DDP, FSDP and DeepSpeed ZeRO-1/2 (set-up and what each has been through:
:mod:`vljepa.training.sharding`); :mod:`jepa_core.backends` refuses the others before any model is built.
Frozen X-encoder features are computed once into the on-disk
:class:`~vljepa.training.feature_cache.FeatureCache` and read back as a table in memory. Checkpoints (model
tensors, optimizer, scheduler, RNG states and the data position) are atomic (:mod:`vljepa.training.checkpointing`);
``resume: true`` continues from the newest complete one.

A non-finite loss on any process stops the run or skips that optimizer step (``on_nonfinite_loss``).
Predicted and target embeddings feed two :class:`~jepa_core.monitoring.EmbeddingMonitor` (collapse
statistics at every logging step). With ``push_to_hub`` the final model folder gets a model card and is
uploaded (:mod:`jepa_core.hub`).

Example::

    >>> from vljepa.training.arguments import VLJEPAModelArguments, VLJEPATrainingArguments
    >>> trainer = VLJEPATrainer(VLJEPAModelArguments(), VLJEPATrainingArguments(query_dataset="easyvqa",
    ...                         eval_dataset="easyvqa"))                        # doctest: +SKIP
    >>> metrics = trainer.train()
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.utils import DistributedType, set_seed
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import get_scheduler

from jepa_core.backends import check_launch_backend, precision_choice
from jepa_core.config import config_to_dict
from jepa_core.distributed import check_world_size, resolve_use_cpu
from jepa_core.monitoring import EmbeddingMonitor, NonFiniteLossError
from jepa_core.rundir import redact_config, write_json, write_run_metadata
from vljepa.data.images import BadInputReport, ImageLoader
from vljepa.evaluate import evaluate_model, load_eval_dataset
from vljepa.training.arguments import VLJEPAModelArguments, VLJEPATrainingArguments
from vljepa.training.checkpointing import Checkpoints, any_process, check_output_dir
from vljepa.training.data import (
    MicroBatches,
    build_feature_table,
    decode_stage_images,
    fill_target_memo,
    load_stages,
    prefill_queries,
)
from vljepa.training.feature_cache import FeatureCache
from vljepa.training.sharding import check_sharded_run, configure_backend

logger = logging.getLogger(__name__)

NO_DECAY_KEYWORDS = ("bias", "norm", "log_logit_scale")


def build_model(model_args: VLJEPAModelArguments):
    """A fresh VL-JEPA or dual-encoder model from the recipe's model section."""
    config = model_args.to_config()
    if model_args.model_kind == "dual_encoder":
        from vljepa.baseline import DualEncoderModel

        return DualEncoderModel.from_config(config)
    from vljepa.modeling import VLJEPAModel

    return VLJEPAModel.from_config(config)


def optimizer_parameter_groups(model, args: VLJEPATrainingArguments) -> list[dict[str, Any]]:
    """AdamW groups: main parameters at ``learning_rate``, the Y-encoder at ``lr x y_encoder_lr_multiplier``;
    no weight decay on biases, norms and the temperature. Frozen parameters are left out."""
    y_ids = {id(p) for p in model.y_encoder_parameters()}
    groups: dict[tuple[bool, bool], list] = {}
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        key = (id(parameter) in y_ids, not any(word in name.lower() for word in NO_DECAY_KEYWORDS))
        groups.setdefault(key, []).append(parameter)
    result = []
    for (is_y, decay), params in sorted(groups.items()):
        if is_y and args.y_encoder_lr_multiplier == 0:
            raise ValueError("y_encoder_lr_multiplier is 0 but the Y-encoder is trainable: set y_encoder_frozen: true")
        lr = args.learning_rate * (args.y_encoder_lr_multiplier if is_y else 1.0)
        result.append({
            "params": params, "lr": lr, "weight_decay": args.weight_decay if decay else 0.0,
            "name": f"{'y_encoder' if is_y else 'main'}{'' if decay else '_no_decay'}",
        })  # fmt: skip
    return result


def global_negatives(accelerator: Accelerator) -> dict[str, Any]:
    """Keyword arguments of the model's forward that, with several processes, make InfoNCE negatives the
    global batch (gathered from every process); none with one process."""
    if accelerator.num_processes > 1:
        return {"gather_fn": accelerator.gather, "rank": accelerator.process_index}
    return {}


class VLJEPATrainer:
    """Trains a model described by :class:`VLJEPAModelArguments` as :class:`VLJEPATrainingArguments` say."""

    def __init__(self, model_args: VLJEPAModelArguments, args: VLJEPATrainingArguments, *, argv: list[str] | None = None):
        self.model_args = model_args
        self.args = args
        self.argv = argv
        self.output_dir = Path(args.output_dir)
        use_cpu = resolve_use_cpu(args.use_cpu)
        self.backend = check_launch_backend("vljepa", use_cpu=use_cpu)  # before any model is built
        check_sharded_run(self.backend, args)
        precision, source = precision_choice(args.mixed_precision)
        self.accelerator = Accelerator(
            cpu=use_cpu,
            mixed_precision=precision,
            gradient_accumulation_steps=args.gradient_accumulation_steps,
            log_with=args.trackers or None,
            project_dir=str(self.output_dir),
        )
        check_world_size(self.accelerator.num_processes, hint="pass --use_cpu true")
        logger.info("Mixed precision %s (from %s); backend %s", self.accelerator.mixed_precision, source,
                    self.backend.describe())
        self.checkpoints = Checkpoints(
            self.accelerator, self.output_dir / "checkpoints", save_total_limit=args.save_total_limit
        )
        self.global_step = 0
        self.position = {"stage_index": 0, "micro_step": 0}
        self.skipped_nonfinite_steps = 0
        self.bad_inputs = BadInputReport(max_examples=10_000)
        self.image_loader = ImageLoader(on_bad_input=args.on_bad_input, max_pixels=args.max_image_pixels,
                                        report=self.bad_inputs)
        self.monitors: list[EmbeddingMonitor] = []
        if args.monitor_collapse and self.accelerator.is_main_process:
            config = args.collapse_monitor_config()
            self.monitors = [EmbeddingMonitor("pred", config=config), EmbeddingMonitor("target", config=config)]

    # ------------------------------------------------------------------------------------------------
    def _feature_cache(self, model) -> FeatureCache | None:
        if not self.args.cache_features:
            return None
        if not model.x_encoder.frozen:  # checked before the cache folder is created
            raise ValueError("cache_features needs a frozen X-encoder (x_encoder_frozen: true)")
        from jepa_core.resolver import jepa_cache_dir

        root = Path(self.args.feature_cache_dir) if self.args.feature_cache_dir else jepa_cache_dir() / "features"
        cache = FeatureCache.for_encoder(
            root, model.x_encoder, encoder_id=model.config.x_encoder_id,
            revision=model.config.x_encoder_revision, storage_dtype=self.args.feature_cache_dtype,
        )  # fmt: skip
        logger.info("Feature cache: %s (%d entries)", cache.directory, len(cache))
        return cache

    def _state(self) -> dict[str, int]:
        """What a checkpoint records besides Accelerate's state: the step and the data position."""
        return {"global_step": self.global_step, **self.position,
                "skipped_nonfinite_steps": self.skipped_nonfinite_steps}

    def _maybe_resume(self) -> None:
        resumed = self.checkpoints.resume(self.args.resume)
        if resumed is None:
            return
        latest, state = resumed
        self.global_step = state["global_step"]
        self.position = {"stage_index": state["stage_index"], "micro_step": state["micro_step"]}
        self.skipped_nonfinite_steps = state.get("skipped_nonfinite_steps", 0)
        logger.info("Resumed from %s: step %d, stage %d, micro-batch %d", latest, self.global_step,
                    self.position["stage_index"], self.position["micro_step"])

    def _evaluate(self, model, dataset, output_dir: Path) -> dict[str, Any]:
        return evaluate_model(
            self.accelerator.unwrap_model(model), task=self.args.eval_task, dataset=dataset,
            output_dir=output_dir, batch_size=self.args.eval_batch_size, accelerator=self.accelerator,
            on_bad_input=self.args.eval_on_bad_input,
        )  # fmt: skip

    # ------------------------------------------------------------------------------------------------
    def train(self) -> dict[str, Any]:
        """Run all stages, save ``output_dir/model``, evaluate, write ``metrics.json``; return the metrics."""
        args, accelerator = self.args, self.accelerator
        started = time.perf_counter()
        if args.torch_num_threads is not None:
            torch.set_num_threads(args.torch_num_threads)
        set_seed(args.seed)
        check_output_dir(self.output_dir, resume=args.resume)  # before anything is written
        if accelerator.is_main_process:
            write_run_metadata(self.output_dir, {"model": self.model_args, "training": args}, argv=self.argv)
        model = build_model(self.model_args)
        if args.init_from:
            model.load_initial_weights(args.init_from)
        cache = self._feature_cache(model)
        stages = load_stages(args, accelerator)
        table = self._feature_table(model, cache, stages)
        prefill_queries(model, stages)  # before prepare(): FSDP runs its units only inside the root's forward
        self._record_bad_inputs()
        features_seconds = time.perf_counter() - started

        micro_counts = self._micro_batch_counts(stages)
        total_steps = sum(count // args.gradient_accumulation_steps for count in micro_counts)
        optimizer = torch.optim.AdamW(optimizer_parameter_groups(model, args), lr=args.learning_rate)
        scheduler = get_scheduler(
            args.lr_scheduler_type, optimizer, num_warmup_steps=int(args.warmup_ratio * total_steps),
            num_training_steps=total_steps,
        )  # fmt: skip
        configure_backend(accelerator, model, args)
        model, optimizer = accelerator.prepare(model, optimizer)
        accelerator.register_for_checkpointing(scheduler)
        unwrapped = accelerator.unwrap_model(model)
        self.checkpoints.skip_frozen_weights(unwrapped.frozen_prefixes())
        memo_size = fill_target_memo(
            unwrapped, stages, micro_counts, seed=args.seed,
            global_batch_size=args.per_device_train_batch_size * accelerator.num_processes,
            dual_encoder=self.model_args.model_kind == "dual_encoder",
        )
        self._maybe_resume()
        if args.trackers:
            flat = redact_config({**config_to_dict(self.model_args), **config_to_dict(args)})
            accelerator.init_trackers("vljepa", config={k: v for k, v in flat.items() if isinstance(v, (int, float, str, bool))})
        eval_dataset = load_eval_dataset(args, accelerator) if args.eval_task != "none" else None
        periodic_eval = None
        if eval_dataset is not None and args.eval_steps and args.eval_max_samples:
            periodic_eval = eval_dataset.shuffle(seed=args.seed).select(range(min(args.eval_max_samples, len(eval_dataset))))

        logger.info("Training %d optimizer steps (%s); batch %d per device x %d processes x %d accumulation",
                    total_steps, ", ".join(f"{s.name}: {c} micro-batches" for s, c in zip(stages, micro_counts)),
                    args.per_device_train_batch_size, accelerator.num_processes, args.gradient_accumulation_steps)
        bar = tqdm(total=total_steps, initial=self.global_step, desc="train", disable=not accelerator.is_local_main_process)
        train_started = time.perf_counter()
        for stage_index, (stage, count) in enumerate(zip(stages, micro_counts)):
            if stage_index >= self.position["stage_index"]:
                self._run_stage(model, optimizer, scheduler, stage, stage_index, count, table, periodic_eval, bar)
        bar.close()
        train_seconds = time.perf_counter() - train_started
        unwrapped.y_encoder.memo_size = memo_size

        accelerator.wait_for_everyone()
        model_dir = self.output_dir / "model"
        sharded = accelerator.distributed_type == DistributedType.FSDP
        full_state = accelerator.get_state_dict(model) if sharded else None  # a collective: every process
        if accelerator.is_main_process:
            unwrapped.save_pretrained(model_dir, state_dict=full_state)
        accelerator.wait_for_everyone()
        if sharded and eval_dataset is not None:  # evaluate the gathered weights, unsharded, on every process
            model = type(unwrapped).from_pretrained(model_dir, device=accelerator.device)
            model.x_encoder.feature_cache = cache  # None without one, as built
        metrics: dict[str, Any] = {}
        eval_started = time.perf_counter()
        if eval_dataset is not None:
            metrics.update(self._evaluate(model, eval_dataset, self.output_dir / "eval"))
        if cache is not None:
            cache.flush()  # features of evaluation images, for the next run
        metrics.update({
            "train_steps": self.global_step,
            "feature_seconds": round(features_seconds, 1),
            "train_seconds": round(train_seconds, 1),
            "eval_seconds": round(time.perf_counter() - eval_started, 1),
            "total_seconds": round(time.perf_counter() - started, 1),
            "num_processes": accelerator.num_processes,
            "skipped_nonfinite_steps": self.skipped_nonfinite_steps,
            "skipped_bad_inputs": self.bad_inputs.total,
        })  # fmt: skip
        if accelerator.is_main_process:
            write_json(self.output_dir / "metrics.json", metrics)
            write_json(model_dir / "metrics.json", metrics)  # for the model card (vljepa push)
        accelerator.log({f"final/{k}": v for k, v in metrics.items() if isinstance(v, (int, float))}, step=self.global_step)
        accelerator.wait_for_everyone()  # every process done with collectives before the group is torn down
        accelerator.end_training()
        if args.push_to_hub and accelerator.is_main_process:
            self._push(model_dir)
        return metrics

    def _push(self, model_dir: Path) -> None:
        """Write the model card into ``model_dir`` and upload the folder to ``hub_model_id``."""
        from jepa_core.hub import HubPublishError, PublishError, push_folder
        from jepa_core.model_card import card_from_folder

        repo_id = self.args.hub_model_id
        card = card_from_folder(model_dir, kind="vljepa", repo_id=repo_id, license=self.args.hub_license)
        trained_on = [name for name in (self.args.caption_dataset, self.args.query_dataset) if name]
        card = dataclasses.replace(card, datasets=card.datasets or trained_on)
        try:
            url = push_folder(model_dir, repo_id, private=self.args.hub_private_repo, card=card,
                              token=self.args.hub_token)
        except (PublishError, HubPublishError) as err:
            raise type(err)(f"{err} The trained model is saved in {model_dir}; publish it later with "
                            f"`vljepa push {model_dir} --repo_id {repo_id}`.") from err
        logger.info("Pushed %s to %s: %s", model_dir, repo_id, url)

    def _record_bad_inputs(self) -> None:
        """Write ``bad_inputs.json`` (counts, and the first 10,000 skipped images with file and row); log a summary."""
        if self.accelerator.is_main_process:
            path = self.bad_inputs.write(self.output_dir)
            if self.bad_inputs.total:
                logger.warning("Training data: %s; the files are listed in %s", self.bad_inputs.summary(), path)

    def _feature_table(self, model, cache: FeatureCache | None, stages: list) -> torch.Tensor | None:
        """Fill the cache for all training images (main process first), load the table ``[U, T, D]``; no cache: None."""
        if cache is None:  # the images are decoded (bad ones dropped under the policy) and read as they are
            for stage in stages:
                decode_stage_images(stage, self.image_loader)
            return None
        model.attach_feature_cache(cache)  # evaluation images go through the cache too
        with self.accelerator.main_process_first():
            cache.refresh()
            table = build_feature_table(
                stages, cache, model.x_encoder, batch_size=self.args.feature_batch_size,
                progress=self.accelerator.is_local_main_process, loader=self.image_loader,
            )  # fmt: skip
        logger.info("Feature table %s (%.1f MB)", tuple(table.shape), table.numel() * 4 / 2**20)
        return table

    def _micro_batch_counts(self, stages: list) -> list[int]:
        """Micro-batches per stage, rounded down to whole optimizer steps."""
        global_batch = self.args.per_device_train_batch_size * self.accelerator.num_processes
        accumulation = self.args.gradient_accumulation_steps
        counts = [stage.total_micro_batches(global_batch) // accumulation * accumulation for stage in stages]
        for stage, count in zip(stages, counts):
            if count == 0:
                raise ValueError(f"{stage.name} stage: {len(stage)} examples x {stage.epochs} epochs is less than one "
                                 f"optimizer step ({global_batch} examples x {accumulation} accumulation)")
        return counts

    def _run_stage(self, model, optimizer, scheduler, stage, stage_index: int, count: int, table, periodic_eval,
                   bar) -> None:
        args, accelerator = self.args, self.accelerator
        start = self.position["micro_step"] if stage_index == self.position["stage_index"] else 0
        source = MicroBatches(
            stage, stage_index=stage_index, start=start, stop=count, seed=args.seed,
            global_batch_size=args.per_device_train_batch_size * accelerator.num_processes,
            process_index=accelerator.process_index, num_processes=accelerator.num_processes, table=table,
            preprocess=None if table is not None else accelerator.unwrap_model(model).x_encoder.preprocess,
        )  # fmt: skip
        # Its own generator: creating a loader iterator draws a seed, which must not advance the global RNG
        # (that would shift dropout masks after a resume).
        loader = DataLoader(
            source, batch_size=None, shuffle=False, num_workers=args.dataloader_num_workers,
            generator=torch.Generator().manual_seed(args.seed + stage_index),
        )
        model.train()
        negatives = global_negatives(accelerator)
        nonfinite = torch.zeros((), dtype=torch.bool, device=accelerator.device)  # any micro-batch of this step
        for batch in loader:
            micro_step = batch.pop("micro_step")
            with accelerator.accumulate(model):
                output = model(**batch, **negatives)
                accelerator.backward(output.loss)
                bad = ~torch.isfinite(output.loss.detach()).all()
                nonfinite = nonfinite | bad
                if self.monitors and not bad:  # main process only: the others skip this synchronisation
                    self._monitor(output)
                if accelerator.sync_gradients:
                    if any_process(accelerator, nonfinite):
                        self._nonfinite_step(stage.name)  # raises, or skips this update
                    else:
                        if args.max_grad_norm > 0:
                            accelerator.clip_grad_norm_(model.parameters(), args.max_grad_norm)
                        optimizer.step()
                    optimizer.zero_grad()
            if not accelerator.sync_gradients:
                continue
            nonfinite = torch.zeros_like(nonfinite)
            scheduler.step()  # also after a skipped step: the schedule follows the data position
            self.global_step += 1
            self.position = {"stage_index": stage_index, "micro_step": micro_step + 1}
            bar.update(1)
            if self.global_step % args.logging_steps == 0:
                self._log(output, scheduler, stage.name, bar)
            if periodic_eval is not None and self.global_step % args.eval_steps == 0:
                metrics = self._evaluate(model, periodic_eval, self.output_dir / "eval" / f"step-{self.global_step}")
                accelerator.log({f"eval/{k}": v for k, v in metrics.items() if isinstance(v, (int, float))},
                                step=self.global_step)
                model.train()
            if args.save_steps and self.global_step % args.save_steps == 0:
                self.checkpoints.save(self._state())
        self.position = {"stage_index": stage_index + 1, "micro_step": 0}
        self.checkpoints.save(self._state())

    def _nonfinite_step(self, stage_name: str) -> None:
        step = self.global_step + 1
        if self.args.on_nonfinite_loss == "stop":
            last = self.checkpoints.latest_name()
            raise NonFiniteLossError(
                f"non-finite training loss (NaN or inf) at optimizer step {step} of the {stage_name!r} stage; "
                "no parameter was updated. The last checkpoint "
                f"{f'({last}) is untouched' if last else 'does not exist yet'}: lower learning_rate (or check "
                "mixed_precision and the data), then continue with --resume true; or set on_nonfinite_loss: skip "
                "to skip such steps."
            )
        self.skipped_nonfinite_steps += 1
        logger.warning("Non-finite training loss at optimizer step %d (%s stage): skipped the update (parameters "
                       "and optimizer state unchanged); %d step(s) skipped so far", step, stage_name,
                       self.skipped_nonfinite_steps)

    def _monitor(self, output) -> None:
        self.monitors[0].update(output.predicted_embeddings)
        if output.target_embeddings is not None:
            self.monitors[1].update(output.target_embeddings)

    def _log(self, output, scheduler, stage_name: str, bar) -> None:
        terms = output.loss_terms
        values = {"train/loss": output.loss.item(), "train/lr": scheduler.get_last_lr()[0]}
        for name in ("prediction_to_target", "target_to_prediction", "cosine_distance", "l2", "temperature",
                     "num_candidates"):
            value = getattr(terms, name)
            if value is not None:
                values[f"train/{name}"] = float(value.detach()) if isinstance(value, torch.Tensor) else float(value)
        for monitor in self.monitors:
            values.update({f"collapse/{key}": value for key, value in monitor.compute().items()})
        self.accelerator.log(values, step=self.global_step)
        bar.set_postfix(stage=stage_name, loss=f"{values['train/loss']:.4f}")
        shown = {k.removeprefix("train/").removeprefix("collapse/"): v for k, v in values.items()
                 if not k.startswith("collapse/") or k.endswith(("/std_mean", "/rankme", "/cosine_mean"))}
        logger.info("step %d [%s] %s", self.global_step, stage_name, " ".join(f"{k}={v:.4g}" for k, v in shown.items()))
