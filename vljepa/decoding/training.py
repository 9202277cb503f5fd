"""Training the Y-decoder: text only (caption -> frozen Y-encoder -> embedding -> reconstruct the caption),
then optionally on (predicted embedding, caption) pairs to close the gap between predicted and real
embeddings.

Embeddings of the training captions are computed once (the Y-encoder is frozen here); each step samples
a batch, optionally adds Gaussian noise to the normalised embeddings (a cheap stand-in for prediction
error: a noise std of s in D dimensions has norm about s * sqrt(D), so s = 0.04 at D = 384 gives a cosine
of about 0.79 to the clean embedding) and minimises the teacher-forced caption loss.

Example::

    >>> decoder = YDecoder.build(YDecoderConfig(language_model_init="scratch"), captions=captions)  # doctest: +SKIP
    >>> history = train_decoder(decoder, embed_texts(captions), captions, DecoderTrainingArguments(output_dir="runs/d"))
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from vljepa.decoding.decoder import YDecoder, YDecoderConfig

logger = logging.getLogger(__name__)

EmbeddingSource = Literal["sentence_transformer", "vljepa"]


@dataclass
class DecoderTrainingArguments:
    """How a Y-decoder is trained (recipes ``recipes/vljepa/ydecoder-*.yaml``)."""

    output_dir: str = field(metadata={"help": "Run directory; the decoder is saved in its 'decoder/' folder."})
    caption_dataset: str = field(
        default="streams",
        metadata={"help": "Registered dataset (vljepa.data) whose texts train the decoder: stream annotations, "
                  "or every caption of a captioning dataset. Ignored when captions_file is set."},
    )
    caption_split: str = field(default="train", metadata={"help": "Split of caption_dataset."})
    caption_dataset_options: str = field(
        default="{}",
        metadata={"help": "JSON object of keyword arguments for load_vl_dataset, e.g. '{\"num_streams\": 400}'."},
    )
    captions_file: str | None = field(
        default=None, metadata={"help": "A UTF-8 text file with one caption per line (instead of a dataset)."}
    )
    extra_captions: list[str] = field(
        default_factory=list,
        metadata={"help": "Texts added to the training texts, e.g. the caption of idle stream windows."},
    )
    embedding_source: EmbeddingSource = field(
        default="sentence_transformer",
        metadata={"help": "'sentence_transformer': embed captions with embedding_model directly; 'vljepa': "
                  "embedding_model is a saved VL-JEPA model whose embed_texts (Y-encoder + projection) is used."},
    )
    embedding_model: str = field(
        default="sentence-transformers/all-MiniLM-L6-v2",
        metadata={"help": "Hub id or folder of the sentence-transformers model, or of the VL-JEPA model."},
    )
    embedding_noise_std: float = field(
        default=0.04, metadata={"help": "Std of Gaussian noise added per dimension to normalised embeddings."}
    )
    max_steps: int = field(default=800, metadata={"help": "Optimiser steps of text-only training."})
    batch_size: int = field(default=64, metadata={"help": "Captions per step."})
    learning_rate: float = field(default=2e-3, metadata={"help": "Peak AdamW learning rate."})
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay."})
    warmup_steps: int = field(default=40, metadata={"help": "Linear warm-up steps, then cosine decay to 10%."})
    logging_steps: int = field(default=50, metadata={"help": "Log the mean loss every this many steps."})
    seed: int = field(default=0, metadata={"help": "Seed of initialisation, batch sampling and noise."})
    device: str = field(default="cpu", metadata={"help": "Torch device to train on ('cpu', 'cuda', ...)."})
    num_threads: int | None = field(
        default=None, metadata={"help": "torch CPU threads (None: torch default; 1 avoids oversubscription on a "
                                "busy machine)."}
    )
    validation_fraction: float = field(
        default=0.1, metadata={"help": "Share of the prediction pairs held out to measure the fine-tuning stage."}
    )
    prediction_dataset: str | None = field(
        default=None,
        metadata={"help": "Captioning dataset whose images the VL-JEPA model (embedding_source='vljepa') embeds "
                  "for a second stage on (predicted embedding, caption) pairs; None: text only."},
    )
    prediction_split: str = field(default="train", metadata={"help": "Split of prediction_dataset."})
    prediction_dataset_options: str = field(
        default="{}", metadata={"help": "JSON object of keyword arguments for load_vl_dataset (prediction stage)."}
    )
    prediction_max_samples: int | None = field(
        default=None, metadata={"help": "Use only the first N images of prediction_dataset."}
    )
    prediction_steps: int = field(default=200, metadata={"help": "Optimiser steps of the prediction stage."})
    prediction_learning_rate: float = field(
        default=5e-4, metadata={"help": "Peak learning rate of the prediction stage."}
    )

    def __post_init__(self) -> None:
        from jepa_core.config import json_mapping_text

        for name in ("caption_dataset_options", "prediction_dataset_options"):
            setattr(self, name, json_mapping_text(getattr(self, name), name))
        for name in ("max_steps", "batch_size", "logging_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.warmup_steps < 0 or self.learning_rate <= 0 or self.weight_decay < 0:
            raise ValueError("need warmup_steps >= 0, learning_rate > 0 and weight_decay >= 0")
        if self.embedding_noise_std < 0:
            raise ValueError(f"embedding_noise_std must be >= 0, got {self.embedding_noise_std}")
        if self.embedding_source not in ("sentence_transformer", "vljepa"):
            raise ValueError(f"embedding_source must be 'sentence_transformer' or 'vljepa', got {self.embedding_source!r}")
        if self.prediction_dataset is not None and self.embedding_source != "vljepa":
            raise ValueError("prediction_dataset needs embedding_source='vljepa' (a model to predict embeddings)")
        if not 0.0 <= self.validation_fraction < 1.0:
            raise ValueError(f"validation_fraction must be in [0, 1), got {self.validation_fraction}")
        if self.prediction_steps < 1 or self.prediction_learning_rate <= 0:
            raise ValueError("need prediction_steps >= 1 and prediction_learning_rate > 0")


def config_arguments_class(config_class: type = YDecoderConfig) -> type:
    """A plain dataclass with ``config_class``'s own fields (types, defaults, help), for HfArgumentParser.

    ``PreTrainedConfig`` subclasses carry many generic fields the parser cannot handle; the decoder's own
    fields are all a recipe needs. ``to_config()`` turns parsed values into ``config_class``.
    """
    module = sys.modules[config_class.__module__]
    own = inspect.get_annotations(config_class)
    specs = []
    for item in dataclasses.fields(config_class):
        if item.name not in own or item.name == "model_type":
            continue
        annotation = own[item.name]
        kind = eval(annotation, vars(module)) if isinstance(annotation, str) else annotation
        default = (
            field(default_factory=item.default_factory, metadata=item.metadata)
            if item.default_factory is not dataclasses.MISSING
            else field(default=item.default, metadata=item.metadata)
        )
        specs.append((item.name, kind, default))
    names = [name for name, _, _ in specs]

    def to_config(self) -> Any:
        return config_class(**{name: getattr(self, name) for name in names})

    return dataclasses.make_dataclass(
        f"{config_class.__name__}Arguments", specs, namespace={"to_config": to_config}
    )


YDecoderArguments = config_arguments_class(YDecoderConfig)


def _learning_rate_factor(step: int, args: DecoderTrainingArguments) -> float:
    if step < args.warmup_steps:
        return (step + 1) / args.warmup_steps
    progress = (step - args.warmup_steps) / max(1, args.max_steps - args.warmup_steps)
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def noisy(embeddings: torch.Tensor, std: float, generator: torch.Generator) -> torch.Tensor:
    """Normalised embeddings plus N(0, std^2) noise per dimension (the decoder normalises again)."""
    unit = F.normalize(embeddings.float(), dim=-1)
    if std == 0:
        return unit
    return unit + std * torch.randn(unit.shape, generator=generator, device=unit.device)


def train_decoder(
    decoder: YDecoder,
    embeddings: torch.Tensor,
    captions: Sequence[str],
    args: DecoderTrainingArguments,
    *,
    max_steps: int | None = None,
    learning_rate: float | None = None,
    progress: bool = True,
) -> list[dict[str, float]]:
    """Teacher-forced training on ``(embeddings [N, D], captions)`` pairs; returns the logged history.

    ``max_steps`` / ``learning_rate`` override ``args`` (used for the shorter fine-tuning stage on
    predicted embeddings).
    """
    if embeddings.shape[0] != len(captions) or not len(captions):
        raise ValueError(f"need as many embeddings as captions (> 0), got {embeddings.shape[0]} and {len(captions)}")
    steps = max_steps or args.max_steps
    peak = learning_rate or args.learning_rate
    run_args = dataclasses.replace(args, max_steps=steps, learning_rate=peak)
    device = torch.device(args.device)
    decoder.to(device)
    embeddings = embeddings.to(device)
    captions = list(captions)
    generator = torch.Generator(device=device).manual_seed(args.seed)
    sampler = torch.Generator().manual_seed(args.seed)
    parameters = [param for param in decoder.parameters() if param.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=peak, weight_decay=args.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: _learning_rate_factor(step, run_args))
    decoder.train()
    history: list[dict[str, float]] = []
    running, started = [], time.perf_counter()
    for step in tqdm(range(steps), desc="train Y-decoder", disable=not progress, mininterval=5):
        rows = torch.randint(len(captions), (min(args.batch_size, len(captions)),), generator=sampler)
        batch = noisy(embeddings[rows.to(device)], args.embedding_noise_std, generator)
        loss = decoder(batch, [captions[i] for i in rows.tolist()]).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        running.append(loss.item())
        if (step + 1) % args.logging_steps == 0 or step + 1 == steps:
            record = {"step": step + 1, "loss": sum(running) / len(running),
                      "learning_rate": scheduler.get_last_lr()[0], "seconds": time.perf_counter() - started}
            history.append(record)
            logger.info("step %d: loss %.4f", record["step"], record["loss"])
            running = []
    decoder.eval()
    return history


def sentence_transformer_embedder(model_id: str, *, device: str = "cpu") -> Callable[[Sequence[str]], torch.Tensor]:
    """``texts -> [M, D]`` with a frozen sentence-transformers model resolved offline-first."""
    from sentence_transformers import SentenceTransformer

    from vljepa.persistence import resolve

    model = SentenceTransformer(str(resolve(model_id)), device=device)
    model.requires_grad_(False)

    def embed(texts: Sequence[str]) -> torch.Tensor:
        return model.encode(list(texts), convert_to_tensor=True, batch_size=128, show_progress_bar=False).float().cpu()

    return embed


def reconstruction_report(
    decoder: YDecoder, embeddings: torch.Tensor, captions: Sequence[str], *, noise_std: float, seed: int = 0,
    num_beams: int = 1,
) -> dict[str, float]:
    """Exact-match rate and CIDEr of decoding ``embeddings`` (plus ``noise_std`` noise) back to ``captions``."""
    from eval.captioning import cider

    generator = torch.Generator().manual_seed(seed)
    decoded = decoder.decode(noisy(embeddings.cpu(), noise_std, generator), num_beams=num_beams)
    exact = sum(a.strip().lower() == b.strip().lower() for a, b in zip(decoded, captions)) / len(captions)
    score = cider({i: text for i, text in enumerate(decoded)}, {i: [ref] for i, ref in enumerate(captions)})
    return {"exact_match": exact, "cider": score, "noise_std": noise_std, "count": len(captions)}


def _options(text: str, name: str) -> dict[str, Any]:
    from jepa_core.config import parse_json_mapping

    return parse_json_mapping(text, name)


def load_training_captions(args: DecoderTrainingArguments) -> list[str]:
    """The training texts: lines of ``captions_file``, or the annotation texts / captions of a dataset."""
    if args.captions_file is not None:
        path = Path(args.captions_file)
        if not path.is_file():
            raise FileNotFoundError(f"captions_file {path} does not exist")
        captions = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        if not captions:
            raise ValueError(f"captions_file {path} holds no non-empty line")
        return captions
    from vljepa.data import load_vl_dataset

    options = _options(args.caption_dataset_options, "caption_dataset_options")
    dataset = load_vl_dataset(args.caption_dataset, args.caption_split, **options)
    if "annotations" in dataset.column_names:
        captions = [item["text"] for row in dataset.select_columns(["annotations"]) for item in row["annotations"]]
    elif "captions" in dataset.column_names:
        captions = [text for row in dataset.select_columns(["captions"]) for text in row["captions"]]
    else:
        raise ValueError(
            f"dataset {args.caption_dataset!r} has neither 'annotations' (stream) nor 'captions' (captioning) "
            f"columns: {dataset.column_names}"
        )
    if not captions:
        raise ValueError(f"dataset {args.caption_dataset!r} ({args.caption_split}) yielded no captions")
    return captions


def _prediction_pairs(model: Any, args: DecoderTrainingArguments) -> tuple[torch.Tensor, list[list[str]]]:
    """Predicted (query-free) embeddings ``[N, D]`` of a captioning dataset's images and their captions."""
    from vljepa.data import load_vl_dataset

    options = _options(args.prediction_dataset_options, "prediction_dataset_options")
    dataset = load_vl_dataset(args.prediction_dataset, args.prediction_split, **options)
    if "captions" not in dataset.column_names:
        raise ValueError(f"prediction_dataset {args.prediction_dataset!r} is not a captioning dataset (no 'captions')")
    if args.prediction_max_samples is not None:
        dataset = dataset.select(range(min(args.prediction_max_samples, len(dataset))))
    embeddings = model.embed_images(list(dataset["image"]), batch_size=args.batch_size)
    return embeddings, [list(captions) for captions in dataset["captions"]]


def _caption_report(decoder: YDecoder, embeddings: torch.Tensor, references: list[list[str]]) -> dict[str, float]:
    from eval.captioning import cider

    decoded = decoder.decode(embeddings)
    exact = sum(text.strip().lower() in {r.strip().lower() for r in refs} for text, refs in zip(decoded, references))
    score = cider(dict(enumerate(decoded)), dict(enumerate(references)))
    return {"cider": score, "exact_match": exact / len(references), "count": len(references)}


def run_decoder_training(model_args: Any, args: DecoderTrainingArguments, *, argv: list[str] | None = None) -> dict:
    """Train a Y-decoder as described by ``YDecoderArguments`` + ``args``; save it to ``output_dir/decoder``.

    Writes ``config.yaml``/``run_info.json`` and ``metrics.json`` (loss history, reconstruction of the
    training texts clean and noisy, and, with a prediction stage, held-out CIDEr before and after it).
    """
    from jepa_core.rundir import write_json, write_run_metadata

    if args.num_threads:
        torch.set_num_threads(args.num_threads)
    out = Path(args.output_dir)
    write_run_metadata(out, {"decoder": model_args, "training": args}, argv=argv)
    torch.manual_seed(args.seed)
    captions = load_training_captions(args) + list(args.extra_captions)
    unique = list(dict.fromkeys(captions))
    logger.info("%d training texts (%d distinct)", len(captions), len(unique))
    model = None
    if args.embedding_source == "vljepa":
        from vljepa.persistence import load_pretrained

        model = load_pretrained(args.embedding_model)

        def embed(texts: Sequence[str]) -> torch.Tensor:
            return model.embed_texts(list(texts), batch_size=args.batch_size)
    else:
        embed = sentence_transformer_embedder(args.embedding_model, device=args.device)
    # Distinct texts are sampled uniformly: a rare text (e.g. the idle caption) must decode as well as a
    # frequent one, and reconstruction does not depend on how often a text occurs.
    table = embed(unique).float()
    config = model_args.to_config()
    if config.embedding_dim != table.shape[1]:
        logger.info("embedding_dim set to %d, the width of %s", table.shape[1], args.embedding_model)
        config.embedding_dim = int(table.shape[1])
    decoder = YDecoder.build(config, captions=unique)
    logger.info("Y-decoder: %d trainable parameters", decoder.num_trainable_parameters())
    metrics: dict[str, Any] = {"trainable_parameters": decoder.num_trainable_parameters(),
                               "num_texts": len(captions), "num_distinct_texts": len(unique)}
    metrics["text_history"] = train_decoder(decoder, table, unique, args)
    sample = table[: min(256, len(unique))]
    metrics["reconstruction"] = {
        f"noise_{std:g}": reconstruction_report(decoder, sample, unique[: sample.shape[0]], noise_std=std)
        for std in sorted({0.0, args.embedding_noise_std})
    }
    if args.prediction_dataset is not None:
        predicted, references = _prediction_pairs(model, args)
        held = max(1, int(len(references) * args.validation_fraction)) if args.validation_fraction else 0
        train_rows = list(range(held, len(references)))
        if not train_rows:
            raise ValueError("prediction_dataset is too small to hold out a validation share and still train")
        if held:
            metrics["prediction_validation_before"] = _caption_report(decoder, predicted[:held], references[:held])
        pairs = [(row, text) for row in train_rows for text in references[row]]
        metrics["prediction_history"] = train_decoder(
            decoder, predicted[torch.tensor([row for row, _ in pairs])], [text for _, text in pairs],
            dataclasses.replace(args, embedding_noise_std=0.0),
            max_steps=args.prediction_steps, learning_rate=args.prediction_learning_rate,
        )
        if held:
            metrics["prediction_validation_after"] = _caption_report(decoder, predicted[:held], references[:held])
    decoder.save_pretrained(out / "decoder")
    write_json(out / "metrics.json", metrics)
    return metrics
