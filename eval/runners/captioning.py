"""Captioning task: generate one caption per image, score with CIDEr-D and BLEU-4.

Needs a model with a text decoder (``generate_captions``); other models get a
:class:`eval.protocol.MissingCapabilityError` before any work is done.

Dataset schema (one row per image): ``image`` (PIL), ``captions`` (reference captions, at least one),
``image_id`` (unique).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from eval.artifacts import TaskReport, print_summary, write_task_outputs
from eval.captioning import bleu4, cider_scores, tokenize_caption
from eval.distributed import gather_records, resolve_shards, shard_indices
from eval.plots import plot_values_histogram
from eval.protocol import MissingCapabilityError, supports_captioning
from eval.runners.common import (
    batches,
    check_batch_size,
    check_text_list,
    column,
    dataset_length,
    image_rows,
    image_view,
    progress,
    split_skipped,
)

logger = logging.getLogger(__name__)

TASK = "captioning"
FIELDS = ("image", "captions", "image_id")


def _check_unique_ids(dataset: Any) -> None:
    first_row: dict[Any, int] = {}
    for index, image_id in enumerate(column(dataset, "image_id", TASK)):
        if image_id in first_row:
            raise ValueError(
                f"{TASK}: image_id {image_id!r} appears in rows {first_row[image_id]} and {index}; "
                "captioning expects one row per image with all its reference captions in 'captions'"
            )
        first_row[image_id] = index


def _generate(model: Any, images: list, batch_size: int) -> list[str]:
    with torch.inference_mode():
        captions = model.generate_captions(images, batch_size=batch_size)
    if not isinstance(captions, (list, tuple)) or len(captions) != len(images):
        raise ValueError(
            f"{type(model).__name__}.generate_captions must return a list with one string per image "
            f"({len(images)} images), got {type(captions).__name__} {str(captions)[:200]}"
        )
    for caption in captions:
        if not isinstance(caption, str):
            raise TypeError(f"{type(model).__name__}.generate_captions returned a non-string: {caption!r}")
    return list(captions)


def run_captioning(
    model: Any,
    dataset: Any,
    *,
    output_dir: str | Path,
    batch_size: int = 32,
    accelerator: Any | None = None,
    on_bad_input: str = "error",
) -> dict[str, Any]:
    """CIDEr-D and BLEU-4 of generated captions; writes metrics, predictions, report and plots.

    Args:
        model: a model with ``generate_captions(images, *, batch_size) -> list[str]``.
        dataset: rows with ``image``, ``captions`` and a unique ``image_id``.
        output_dir: where the main process writes its files.
        batch_size: images per model call.
        accelerator: ``None``, an ``accelerate.Accelerator`` or an :class:`eval.distributed.ShardContext`.
        on_bad_input: an image that cannot be decoded: ``"error"`` raises naming the row and file; ``"skip"``
            leaves the row out and lists it in the metrics (``skipped_bad_inputs``, ``bad_inputs``).
    """
    if not supports_captioning(model):
        raise MissingCapabilityError(
            f"{type(model).__name__} has no generate_captions(images, *, batch_size) method, so it cannot be "
            "evaluated on captioning: the task needs a model with a text decoder. Run the retrieval, VQA or "
            "zero-shot tasks for embedding-only models."
        )
    check_batch_size(batch_size)
    shards = resolve_shards(accelerator)
    num_rows = dataset_length(dataset, TASK)
    dataset = image_view(dataset)
    _check_unique_ids(dataset)
    records = []
    indices = shard_indices(num_rows, shards)
    num_batches = (len(indices) + batch_size - 1) // batch_size
    for batch in progress(batches(indices, batch_size), total=num_batches, desc="captioning", shards=shards):
        rows, batch, images, skipped = image_rows(dataset, batch, FIELDS, TASK, on_bad_input)
        records += skipped
        if not batch:
            continue
        references = [
            check_text_list(row["captions"], index, "captions", TASK, allow_empty=False)
            for row, index in zip(rows, batch)
        ]
        generated = _generate(model, images, batch_size)
        for index, row, caption, refs in zip(batch, rows, generated, references):
            records.append(
                {"index": index, "image_id": row["image_id"], "caption": caption, "references": refs}
            )
    records, bad_inputs = split_skipped(gather_records(records, shards, num_rows), TASK)

    candidates = {record["index"]: record["caption"] for record in records}
    references = {record["index"]: record["references"] for record in records}
    per_example = cider_scores(candidates, references)
    lengths = [len(tokenize_caption(record["caption"]).split()) for record in records]
    metrics: dict[str, Any] = {
        "cider": float(np.mean(list(per_example.values()))),
        "bleu4": bleu4(candidates, references),
        "num_images": len(records),
        "mean_caption_length": float(np.mean(lengths)),
        **bad_inputs,
    }
    if shards.is_main_process:
        for record in records:
            record["cider"] = per_example[record["index"]]
        _write_outputs(Path(output_dir), model, records, metrics)
    return metrics


def _write_outputs(output_dir: Path, model: Any, records: list[dict], metrics: dict[str, Any]) -> None:
    output_dir.mkdir(parents=True, exist_ok=True)
    plot_values_histogram(
        {"generated captions": [record["cider"] for record in records]},
        output_dir / "cider_histogram.png", title="per-image CIDEr-D", xlabel="CIDEr-D",
    )  # fmt: skip
    plot_values_histogram(
        {
            "generated": [len(tokenize_caption(r["caption"]).split()) for r in records],
            "references": [len(tokenize_caption(ref).split()) for r in records for ref in r["references"]],
        },
        output_dir / "caption_lengths.png", title="caption length", xlabel="tokens",
    )  # fmt: skip
    report = TaskReport(
        title="Captioning evaluation",
        summary=dict(metrics),
        percent_keys={"bleu4"},
        sections={
            "Setup": (
                f"Model: `{type(model).__name__}`. {metrics['num_images']} images. CIDEr-D (x10 scale) "
                "from the COCO caption evaluation's scorer with document frequencies from these references; "
                "BLEU-4 from sacrebleu. Both use a Java-free approximation of the PTB tokenizer."
            ),
        },
        figures={"cider_histogram.png": "Per-image CIDEr-D", "caption_lengths.png": "Caption lengths"},
    )
    write_task_outputs(output_dir, metrics=metrics, predictions=records, report=report)
    print_summary(report)
    logger.info("captioning results written to %s", output_dir)
