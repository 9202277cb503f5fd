"""``llm-jepa train RECIPE.yaml [--field value ...]``: fine-tune a causal LM with the LLM-JEPA objective.

Works as a plain process or under ``accelerate launch --config_file recipes/accelerate/<setup>.yaml -m
llm_jepa.cli train RECIPE.yaml``. Writes into ``output_dir``: ``config.yaml`` + ``run_info.json`` (resolved
config, version, commit), checkpoints, TensorBoard logs, the final model or adapter with the tokenizer and
its [PRED] tokens, ``llm_jepa_config.json``, ``train_results.json`` and a ``README.md`` model card.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llm_jepa.recipe import DataArguments, LLMJepaModelArguments

if TYPE_CHECKING:
    from llm_jepa.arguments import LLMJepaTrainingArguments

logger = logging.getLogger(__name__)

USAGE = "llm-jepa train RECIPE.yaml [--field value ...]"


def config_types() -> tuple[type, type, type]:
    """The recipe's dataclasses: model, data, training (importing the last one imports transformers)."""
    from llm_jepa.arguments import LLMJepaTrainingArguments

    return LLMJepaModelArguments, DataArguments, LLMJepaTrainingArguments


def __getattr__(name: str) -> Any:
    if name == "CONFIG_TYPES":  # kept for callers of the old constant; built on first use (it imports transformers)
        return config_types()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def parse_training_config(argv: Sequence[str]) -> tuple[LLMJepaModelArguments, DataArguments, LLMJepaTrainingArguments]:
    """Recipe YAML + CLI overrides -> the three config objects (unknown keys raise ``ConfigError``)."""
    from jepa_core.config import parse_config

    model_args, data_args, train_args = parse_config(config_types(), list(argv))
    return model_args, data_args, train_args


def print_train_help() -> None:
    """``llm-jepa train --help``: every recipe field with its help, without importing transformers or torch.

    ``TrainingArguments``' fields are read from the installed transformers' source (:mod:`jepa_core.config_help`);
    if that file cannot be read that way, the slow path imports the classes and prints ``HfArgumentParser``'s help.
    """
    from jepa_core.config_help import fields_help, merge_fields, print_help, source_fields_help
    from llm_jepa.recipe import JepaObjectiveConfig, LLMJepaTrainerOptions

    trainer_fields = source_fields_help("transformers.training_args", "TrainingArguments")
    if trainer_fields is None:
        from transformers import HfArgumentParser

        print(f"usage: {USAGE}\n")
        HfArgumentParser(list(config_types())).print_help()
        return
    # LLMJepaTrainingArguments(LLMJepaTrainerOptions, TrainingArguments, JepaObjectiveConfig): reverse MRO order
    training = merge_fields(fields_help(JepaObjectiveConfig), trainer_fields, fields_help(LLMJepaTrainerOptions))
    sections = [
        ("LLMJepaModelArguments", "Which model to fine-tune and how (full, LoRA, QLoRA).",
         fields_help(LLMJepaModelArguments)),
        ("DataArguments", "Where the chat examples come from and how long they may be.", fields_help(DataArguments)),
        ("LLMJepaTrainingArguments", "transformers.TrainingArguments plus the LLM-JEPA objective and options.",
         training),
    ]
    print_help(USAGE, sections)


def load_training_data(data_args: DataArguments, split: str, limit: int | None) -> Any:
    """Messages dataset from ``llm_jepa.data.load_messages_dataset`` (first ``limit`` rows)."""
    from llm_jepa.data import load_messages_dataset

    dataset = load_messages_dataset(data_args.dataset, split=split, **(data_args.dataset_kwargs or {}))
    if limit is not None and limit < len(dataset):
        dataset = dataset.select(range(limit))
    return dataset


def _check_attention_backend(model: Any, train_args: LLMJepaTrainingArguments) -> None:
    backend = model.config._attn_implementation
    if train_args.jepa_mode == "packed" and train_args.uses_jepa and backend not in ("sdpa", "eager"):
        raise ValueError(
            f"jepa_mode=packed passes a custom 4D attention mask, which the {backend!r} backend does not take; "
            "set attn_implementation: sdpa (or eager), or jepa_mode: separate"
        )


def check_backend(model_args: LLMJepaModelArguments, train_args: LLMJepaTrainingArguments) -> None:
    """Refuse a launch backend this trainer cannot use (or QLoRA under FSDP / DeepSpeed); log the precision.

    Precision: the HF Trainer reads ``ACCELERATE_MIXED_PRECISION`` (set by ``accelerate launch
    --mixed_precision`` or the config file) when the recipe leaves ``bf16`` and ``fp16`` false, and ``bf16: true``
    / ``fp16: true`` in the recipe win. A recipe cannot force fp32 under a bf16 launch (``bf16: false`` is the
    same as unset): launch with ``--mixed_precision no`` for that.
    """
    from jepa_core.backends import UnsupportedBackendError, check_launch_backend, precision_choice
    from jepa_core.distributed import accelerator_available

    use_cpu = bool(train_args.use_cpu) or not accelerator_available()
    backend = check_launch_backend(
        "llm_jepa", use_cpu=use_cpu, qlora=model_args.peft == "qlora", mixed_trainable=model_args.peft != "none"
    )
    if backend.name == "DeepSpeed" and train_args.on_nonfinite_loss == "skip":
        raise UnsupportedBackendError(
            "on_nonfinite_loss: skip cannot work under DeepSpeed (its engine keeps the gradients and applies the "
            "update itself, so dropping them does not skip the step); use on_nonfinite_loss: stop"
        )
    recipe = "fp16" if train_args.fp16 else "bf16" if train_args.bf16 else None
    _, source = precision_choice(recipe)
    logger.info("Mixed precision %s (from %s); backend %s", train_args.mixed_precision, source, backend.describe())


def resume_argument(value: str | bool | None) -> str | bool | None:
    """``--resume_from_checkpoint``: ``true`` = the last complete checkpoint in output_dir, ``false`` = none,
    anything else a checkpoint folder."""
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true" or None
    return value


def _no_examples(source: str, data_args: DataArguments) -> Exception:
    from jepa_core.config import ConfigError

    return ConfigError(
        f"no training examples in {source} (split {data_args.dataset_split}): nothing to train; check the dataset "
        "path, split and max_train_examples"
    )


def train(
    model_args: LLMJepaModelArguments,
    data_args: DataArguments,
    train_args: LLMJepaTrainingArguments,
    *,
    argv: Sequence[str] | None = None,
    train_dataset: Any = None,
    eval_dataset: Any = None,
) -> Path:
    """Train and save; return ``output_dir``. Datasets of chat ``messages`` may be passed in directly.

    Steps: claim the output folder (resolved config, version, commit), load the model with its [PRED]
    tokens, tokenise the views, build the trainer, train and evaluate, save the model and its card.
    """
    import transformers
    from transformers import set_seed

    transformers.utils.logging.set_verbosity(train_args.get_process_log_level())
    output_dir = _start_run_dir(model_args, data_args, train_args, argv)
    set_seed(train_args.seed)
    model, tokenizer, pred_ids, saved = _load_model(model_args, train_args)
    source = data_args.dataset if train_dataset is None else "a dataset passed to llm_jepa.run.train"
    train_views, eval_views = _tokenized_views(data_args, train_args, tokenizer, train_dataset, eval_dataset, source)
    trainer = _build_trainer(
        model, tokenizer, pred_ids, saved, model_args, data_args, train_args, train_views, eval_views, source
    )
    _train_and_evaluate(trainer, train_args, evaluate=eval_views is not None, output_dir=output_dir)
    _save_final(trainer, tokenizer, saved, model_args, train_args, output_dir)
    logger.info("LLM-JEPA training finished; model in %s", output_dir)
    return output_dir


def _start_run_dir(
    model_args: LLMJepaModelArguments, data_args: DataArguments, train_args: LLMJepaTrainingArguments,
    argv: Sequence[str] | None,
) -> Path:
    """Refuse a folder that already holds a finished model (unless told); write the run metadata."""
    from jepa_core.config import ConfigError
    from jepa_core.rundir import write_run_metadata
    from llm_jepa.loading import SAVED_CONFIG_NAME

    output_dir = Path(train_args.output_dir)
    finished = (output_dir / SAVED_CONFIG_NAME).is_file()
    if finished and not train_args.overwrite_output_dir and train_args.resume_from_checkpoint is None:
        raise ConfigError(
            f"output_dir {output_dir} already holds a trained model ({SAVED_CONFIG_NAME}); pass "
            "--overwrite_output_dir true to replace it, or choose another output_dir"
        )
    check_backend(model_args, train_args)  # before any model is loaded or anything is written
    if train_args.should_save:
        sections = {"model": model_args, "data": data_args, "training": train_args}
        write_run_metadata(output_dir, sections, argv=list(argv) if argv is not None else None)
    return output_dir


def _load_model(model_args: LLMJepaModelArguments, train_args: LLMJepaTrainingArguments) -> tuple[Any, ...]:
    """``(model, tokenizer, pred_token_ids, saved_config)``, the saved config recording the objective."""
    from llm_jepa.loading import load_model_for_training

    device_map = None
    if model_args.peft == "qlora":
        from accelerate import PartialState

        device_map = {"": PartialState().device}  # each process quantises its own copy onto its device
    model, tokenizer, pred_ids, saved = load_model_for_training(
        model_args, num_pred_tokens=train_args.num_pred_tokens,
        gradient_checkpointing=bool(train_args.activation_checkpointing), device_map=device_map,
    )
    saved.objective = train_args.objective_dict()
    _check_attention_backend(model, train_args)
    return model, tokenizer, pred_ids, saved


def _tokenized_views(
    data_args: DataArguments, train_args: LLMJepaTrainingArguments, tokenizer: Any, train_dataset: Any,
    eval_dataset: Any, source: str,
) -> tuple[Any, Any]:
    """The train and eval (None without one) datasets tokenised into LLM-JEPA views (main process first)."""
    from llm_jepa.views import ViewTokenizer, tokenize_views_dataset

    if train_dataset is None:
        train_dataset = load_training_data(data_args, data_args.dataset_split, data_args.max_train_examples)
    if eval_dataset is None and data_args.eval_split:
        eval_dataset = load_training_data(data_args, data_args.eval_split, data_args.max_eval_examples)
    if len(train_dataset) == 0:
        raise _no_examples(source, data_args)
    views = ViewTokenizer(tokenizer, text_view=train_args.jepa_text_view, max_length=data_args.max_length)
    with train_args.main_process_first(desc="LLM-JEPA views"):
        train_views = tokenize_views_dataset(train_dataset, views, split_name=data_args.dataset_split)
        eval_views = (
            tokenize_views_dataset(eval_dataset, views, split_name=data_args.eval_split or "eval")
            if eval_dataset is not None else None
        )
    if len(train_views) == 0:
        raise _no_examples(source, data_args)
    return train_views, eval_views


def _build_trainer(
    model: Any, tokenizer: Any, pred_ids: Any, saved: Any, model_args: LLMJepaModelArguments,
    data_args: DataArguments, train_args: LLMJepaTrainingArguments, train_views: Any, eval_views: Any, source: str,
) -> Any:
    """The :class:`~llm_jepa.trainer.LLMJepaTrainer` with its view collator."""
    from llm_jepa.packing import LLMJepaCollator
    from llm_jepa.trainer import LLMJepaTrainer

    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    collator = LLMJepaCollator(
        pred_token_ids=pred_ids, pad_token_id=pad_id or 0, mode=train_args.jepa_mode,
        stop_gradient=train_args.jepa_stop_gradient,
    )
    description = f"{source} (split {data_args.dataset_split}, {len(train_views)} examples)"
    trainer = LLMJepaTrainer(
        model=model, args=train_args, train_dataset=train_views, eval_dataset=eval_views,
        data_collator=collator, processing_class=tokenizer, saved_config=saved, data_description=description,
        dataset_name=data_args.dataset if source == data_args.dataset else None,
    )
    if saved.weights == "full" and model_args.peft != "none" and (
        trainer.is_fsdp_enabled or trainer.is_deepspeed_enabled
    ):
        raise ValueError(
            "save_merged is not supported with FSDP / DeepSpeed sharded weights; train without it and merge "
            "afterwards with llm_jepa.loading.load_for_inference(output_dir, merge=True)"
        )
    return trainer


def _train_and_evaluate(
    trainer: Any, train_args: LLMJepaTrainingArguments, *, evaluate: bool, output_dir: Path
) -> None:
    from jepa_core.config import ConfigError

    result = trainer.train(resume_from_checkpoint=resume_argument(train_args.resume_from_checkpoint))
    if trainer.state.global_step == 0:  # e.g. fewer examples than one batch with dataloader_drop_last
        raise ConfigError(
            f"training ran zero optimizer steps ({len(trainer.train_dataset)} examples, batch "
            f"{train_args.per_device_train_batch_size} x {train_args.gradient_accumulation_steps} accumulation); "
            f"no model or model card was written to {output_dir}"
        )
    trainer.log_metrics("train", result.metrics)
    trainer.save_metrics("train", result.metrics)
    trainer.save_state()
    if evaluate:
        eval_metrics = trainer.evaluate()
        trainer.log_metrics("eval", eval_metrics)
        trainer.save_metrics("eval", eval_metrics)


def _save_final(
    trainer: Any, tokenizer: Any, saved: Any, model_args: LLMJepaModelArguments,
    train_args: LLMJepaTrainingArguments, output_dir: Path,
) -> None:
    """The final model (or adapter) with tokenizer and model card; pushed when ``push_to_hub``."""
    from llm_jepa.loading import save_trained

    if saved.weights == "full" and model_args.peft != "none":  # merged LoRA: one process writes it
        if train_args.should_save:
            save_trained(trainer.accelerator.unwrap_model(trainer.model), tokenizer, output_dir, saved)
    else:
        trainer.save_model(str(output_dir))
    trainer.create_model_card()
    if train_args.push_to_hub:
        trainer.push_to_hub(commit_message="LLM-JEPA fine-tune")


def run_training(argv: Sequence[str]) -> Path:
    """Parse ``[RECIPE.yaml] [--field value ...]``, train, save; return the output folder.

    The folder holds the final model or adapter plus the tokenizer (loadable with
    :func:`llm_jepa.loading.load_for_inference`).
    """
    model_args, data_args, train_args = parse_training_config(argv)
    return train(model_args, data_args, train_args, argv=list(argv))


def main(argv: Sequence[str] | None = None) -> int:
    """``llm-jepa train``: print the output folder; bad recipes exit with status 2 and the reason."""
    import sys

    from jepa_core.config import ConfigError

    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print_train_help()
        return 0
    try:
        output_dir = run_training(argv)
    except ConfigError as err:
        print(f"llm-jepa train: {err}", file=sys.stderr)
        return 2
    print(output_dir)
    return 0
