"""The ``vljepa`` command line.

    vljepa train RECIPE.yaml [--field value ...]          # also under `accelerate launch -m vljepa.cli train ...`
    vljepa eval --model DIR_OR_ID --task {retrieval,zeroshot,vqa,captioning} --dataset NAME \\
                [--split test] [--max_samples N] --output_dir DIR
    vljepa train-decoder RECIPE.yaml [--field value ...]  # the Y-decoder (text on demand)
    vljepa decode --model DIR --frames DIR_OR_VIDEO --mode {selective,ward,uniform} [--threshold T]
    vljepa bench-decoding RECIPE.yaml                     # selective vs. uniform decoding sweep
    vljepa push FOLDER --repo_id USER/NAME [--private]     # publish a saved model with a model card
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from jepa_core.cli import setup_logging, split_subcommand
from jepa_core.config import ConfigError, parse_config

logger = logging.getLogger("vljepa")

USAGE = """usage: vljepa {train,eval,train-decoder,decode,bench-decoding,push} ...

  vljepa train RECIPE.yaml [--field value ...]
      Train VL-JEPA (or the dual-encoder baseline) from a recipe; flags override recipe fields.
  vljepa eval --model DIR_OR_ID --task {retrieval,zeroshot,vqa,captioning} --dataset NAME --output_dir DIR
      Evaluate a saved model with the eval runners (metrics.json, predictions.jsonl, report.md).
  vljepa train-decoder RECIPE.yaml [--field value ...]
      Train a Y-decoder (embedding -> text) and save it; attach it to a model to caption and answer in text.
  vljepa decode --model DIR --frames DIR_OR_VIDEO [--mode selective|ward|uniform] [--threshold T] [--fps F]
      Timestamped captions of a frame folder or video, decoding only when the predicted meaning changes.
  vljepa bench-decoding RECIPE.yaml [--field value ...]
      Selective vs. uniform decoding on generated streams: CIDEr against decodes per second.
  vljepa push FOLDER --repo_id USER/NAME [--private] [--model_card auto|keep|generate]
      Publish a saved model folder to the Hugging Face Hub (safetensors only, with a generated model card).

Run `vljepa train --help` or `vljepa eval --help` for every field."""


@dataclass
class VLJEPAEvalArguments:
    """Arguments of ``vljepa eval``."""

    model: str = field(metadata={"help": "Saved model folder or hub id (VL-JEPA or dual encoder)."})
    task: Literal["retrieval", "zeroshot", "vqa", "captioning"] = field(metadata={"help": "Evaluation task."})
    dataset: str = field(metadata={"help": "Dataset name for vljepa.data.load_vl_dataset."})
    output_dir: str = field(metadata={"help": "Where metrics.json, predictions.jsonl and report.md go."})
    split: str = field(default="test", metadata={"help": "Dataset split."})
    dataset_kwargs: str = field(
        default="{}", metadata={"help": "JSON keyword arguments for load_vl_dataset, e.g. '{\"root\": \"/data\"}'."}
    )
    revision: str | None = field(default=None, metadata={"help": "Revision of a hub model."})
    on_bad_input: Literal["error", "skip"] = field(
        default="error",
        metadata={"help": "An image that cannot be decoded: 'error' stops naming the row and file; 'skip' leaves "
                  "the row out and lists it in metrics.json (skipped_bad_inputs, bad_inputs)."},
    )
    decoder: str | None = field(
        default=None,
        metadata={"help": "Y-decoder folder to attach (generative captioning; default: the model's own decoder/)."},
    )
    batch_size: int = field(default=128, metadata={"help": "Examples per model call."})
    max_samples: int | None = field(default=None, metadata={"help": "Evaluate only the first N rows."})
    cache_features: bool = field(
        default=True, metadata={"help": "Read/write frozen X-encoder features in the on-disk feature cache."}
    )
    feature_cache_dir: str | None = field(default=None, metadata={"help": "Cache root (default: $JEPA_CACHE_DIR/features)."})
    torch_num_threads: int | None = field(
        default=None,
        metadata={"help": "torch.set_num_threads for the evaluation (None: torch's default). 1 avoids OpenMP "
                  "threads spin-waiting on a shared CPU, as the CPU recipes do."},
    )

    def __post_init__(self) -> None:
        from jepa_core.config import json_mapping_text

        self.dataset_kwargs = json_mapping_text(self.dataset_kwargs, "dataset_kwargs")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.torch_num_threads is not None and self.torch_num_threads < 1:
            raise ValueError(f"torch_num_threads must be >= 1 or unset, got {self.torch_num_threads}")
        if self.max_samples is not None and self.max_samples < 1:
            raise ValueError(f"max_samples must be >= 1, got {self.max_samples}")


def _is_main_process() -> bool:
    import os

    return os.environ.get("RANK", "0") == "0"


def train_command(argv: Sequence[str]) -> int:
    from vljepa.training.arguments import VLJEPAModelArguments, VLJEPATrainingArguments

    model_args, training_args = parse_config((VLJEPAModelArguments, VLJEPATrainingArguments), list(argv))
    # The trainer (timm, torchvision, accelerate) is imported after parsing, so that `train --help` stays quick.
    from vljepa.training.checkpointing import check_output_dir
    from vljepa.training.trainer import VLJEPATrainer

    check_output_dir(training_args.output_dir, resume=training_args.resume)  # before the log file is opened
    setup_logging(Path(training_args.output_dir) / "train.log", main_process=_is_main_process())
    metrics = VLJEPATrainer(model_args, training_args, argv=["vljepa", "train", *argv]).train()
    if _is_main_process():
        _print_metrics(metrics)
        print(f"model: {Path(training_args.output_dir) / 'model'}")
    return 0


def eval_command(argv: Sequence[str]) -> int:
    from vljepa.evaluate import evaluate_model, load_dataset_for_eval
    from vljepa.persistence import load_pretrained

    (args,) = parse_config((VLJEPAEvalArguments,), list(argv))
    setup_logging(Path(args.output_dir) / "eval.log")
    if args.torch_num_threads is not None:
        import torch

        torch.set_num_threads(args.torch_num_threads)
    model = load_pretrained(args.model, revision=args.revision)
    if args.decoder is not None:
        from vljepa.decoding.decoder import YDecoder

        if not hasattr(model, "attach_decoder"):
            raise ConfigError(f"--decoder: {type(model).__name__} predicts no embeddings to decode")
        model.attach_decoder(YDecoder.from_pretrained(args.decoder))
    if args.cache_features and model.x_encoder.frozen:
        from jepa_core.resolver import jepa_cache_dir
        from vljepa.training.feature_cache import FeatureCache

        root = Path(args.feature_cache_dir) if args.feature_cache_dir else jepa_cache_dir() / "features"
        model.attach_feature_cache(FeatureCache.for_encoder(
            root, model.x_encoder, encoder_id=model.config.x_encoder_id, revision=model.config.x_encoder_revision
        ))
    dataset = load_dataset_for_eval(args.dataset, args.split, kwargs=json.loads(args.dataset_kwargs))
    if args.max_samples is not None:
        dataset = dataset.select(range(min(args.max_samples, len(dataset))))
    metrics = evaluate_model(model, task=args.task, dataset=dataset, output_dir=args.output_dir, batch_size=args.batch_size,
                             on_bad_input=args.on_bad_input)
    if model.feature_cache is not None:
        model.feature_cache.flush()
    _print_metrics(metrics)
    return 0


def _print_metrics(metrics: dict) -> None:
    width = max((len(k) for k in metrics), default=0)
    for key, value in metrics.items():
        if isinstance(value, dict):
            for sub, sub_value in value.items():
                print(f"{key + '.' + sub:<{width + 12}} {sub_value:.4f}" if isinstance(sub_value, float)
                      else f"{key + '.' + sub:<{width + 12}} {sub_value}")
        else:
            print(f"{key:<{width + 12}} {value:.4f}" if isinstance(value, float) else f"{key:<{width + 12}} {value}")


def push_command(argv: Sequence[str]) -> int:
    from jepa_core.hub import push_main

    setup_logging()
    return push_main(argv, kind="vljepa")


def _decoding_command(name: str):
    def run(argv: Sequence[str]) -> int:
        from vljepa.decoding import cli as decoding_cli

        return getattr(decoding_cli, name)(argv)

    return run


COMMANDS = {
    "train": train_command,
    "eval": eval_command,
    "train-decoder": _decoding_command("train_decoder_main"),
    "decode": _decoding_command("decode_main"),
    "bench-decoding": _decoding_command("bench_decoding_main"),
    "push": push_command,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``vljepa`` console script. Returns the exit status."""
    parsed = split_subcommand("vljepa", USAGE, COMMANDS, argv)
    if isinstance(parsed, int):
        return parsed
    command, rest = parsed
    try:
        return COMMANDS[command](rest)
    except ConfigError as err:
        print(f"vljepa {command}: {err}", file=sys.stderr)
        return 2
    except ValueError as err:
        # Imported here (already loaded when they were raised), so that `--help` stays fast.
        from vljepa.data.adapters.common import DataFormatError
        from vljepa.data.images import BadInputError

        if not isinstance(err, (BadInputError, DataFormatError)):
            raise
        print(f"vljepa {command}: {err}", file=sys.stderr)  # the message names the file and row
        return 2


if __name__ == "__main__":
    sys.exit(main())
