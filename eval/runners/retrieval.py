"""Image-text retrieval task: embed every image and caption, then Recall@K both ways.

Dataset schema (one row per image): ``image`` (PIL), ``captions`` (list of str, at least one),
``image_id``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from eval.artifacts import TaskReport, markdown_table, print_summary, write_task_outputs
from eval.distributed import gather_records, resolve_shards, shard_device, shard_indices
from eval.plots import plot_recall_curves, plot_similarity_histogram
from eval.protocol import check_embedding_model
from eval.retrieval import DEFAULT_CHUNK_SIZE, recall_from_ranks, retrieval_ranks
from eval.runners.common import (
    batches,
    check_batch_size,
    check_text_list,
    dataset_length,
    image_rows,
    image_view,
    model_output,
    progress,
    split_skipped,
)

logger = logging.getLogger(__name__)

TASK = "retrieval"
FIELDS = ("image", "captions", "image_id")
NEGATIVE_SEED = 0


def _embed_shard(
    model: Any, dataset: Any, indices: list[int], batch_size: int, shards: Any, on_bad_input: str
) -> list[dict]:
    records = []
    num_batches = (len(indices) + batch_size - 1) // batch_size
    for batch in progress(batches(indices, batch_size), total=num_batches, desc="retrieval", shards=shards):
        rows, batch, images, skipped = image_rows(dataset, batch, FIELDS, TASK, on_bad_input)
        records += skipped
        if not batch:
            continue
        captions = [
            check_text_list(row["captions"], index, "captions", TASK, allow_empty=False)
            for row, index in zip(rows, batch)
        ]
        flat = [caption for row_captions in captions for caption in row_captions]
        with torch.inference_mode():
            image_emb = model_output(
                model.embed_images(images, batch_size=batch_size),
                rows=len(batch),
                method="embed_images",
                model=model,
            )
            text_emb = model_output(
                model.embed_texts(flat, batch_size=batch_size),
                rows=len(flat),
                method="embed_texts",
                model=model,
            )
        offsets = np.cumsum([0] + [len(row_captions) for row_captions in captions])
        for position, (index, row) in enumerate(zip(batch, rows)):
            records.append(
                {
                    "index": index,
                    "image_id": row["image_id"],
                    "captions": captions[position],
                    "image_emb": image_emb[position],
                    "caption_emb": text_emb[offsets[position] : offsets[position + 1]],
                }
            )
    return records


def _random_negative_scores(
    image_emb: np.ndarray, text_emb: np.ndarray, text_image_ids: np.ndarray
) -> np.ndarray:
    """Cosine similarity of each caption with one other image drawn at random (seeded)."""
    num_images = image_emb.shape[0]
    if num_images < 2:
        return np.zeros(0, dtype=np.float32)
    rng = np.random.default_rng(NEGATIVE_SEED)
    others = (text_image_ids + rng.integers(1, num_images, size=text_image_ids.shape[0])) % num_images
    images = image_emb / np.maximum(np.linalg.norm(image_emb, axis=1, keepdims=True), 1e-12)
    texts = text_emb / np.maximum(np.linalg.norm(text_emb, axis=1, keepdims=True), 1e-12)
    return (texts * images[others]).sum(axis=1)


def run_retrieval(
    model: Any,
    dataset: Any,
    *,
    output_dir: str | Path,
    batch_size: int = 32,
    accelerator: Any | None = None,
    ks: Sequence[int] = (1, 5, 10),
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    num_listed: int = 5,
    on_bad_input: str = "error",
) -> dict[str, Any]:
    """Recall@K image-to-text and text-to-image; writes metrics, predictions, report and plots.

    Args:
        model: an :class:`eval.protocol.EmbeddingModel`.
        dataset: rows with ``image``, ``captions``, ``image_id``.
        output_dir: where the main process writes ``metrics.json``, ``predictions.jsonl``, ``report.md``.
        batch_size: images per model call (their captions go in the same call to ``embed_texts``).
        accelerator: ``None``, an ``accelerate.Accelerator`` or an :class:`eval.distributed.ShardContext`.
        ks: recall cut-offs.
        chunk_size: block size of the similarity computation (memory bound only).
        num_listed: how many retrieved items each prediction record lists.
        on_bad_input: an image that cannot be decoded: ``"error"`` raises naming the row and file; ``"skip"``
            leaves the row (and its captions) out and lists it in the metrics (``bad_inputs``).

    Returns the metrics (the same on every process).
    """
    check_embedding_model(model, task=TASK)
    check_batch_size(batch_size)
    shards = resolve_shards(accelerator)
    num_rows = dataset_length(dataset, TASK)
    local = _embed_shard(model, image_view(dataset), shard_indices(num_rows, shards), batch_size, shards, on_bad_input)
    records, bad_inputs = split_skipped(gather_records(local, shards, num_rows), TASK)
    num_rows = len(records)

    image_emb = np.stack([record["image_emb"] for record in records])
    text_emb = np.concatenate([record["caption_emb"] for record in records])
    text_image_ids = np.repeat(np.arange(num_rows), [len(record["captions"]) for record in records])
    device = shard_device(shards)
    ranks = retrieval_ranks(
        torch.from_numpy(image_emb).to(device),
        torch.from_numpy(text_emb).to(device),
        text_image_ids,
        chunk_size=chunk_size,
        top_k=max(max(ks), num_listed),
    )
    negatives = _random_negative_scores(image_emb, text_emb, text_image_ids)
    positives = ranks.positive_scores.numpy()
    metrics: dict[str, Any] = dict(recall_from_ranks(ranks, ks))
    metrics.update(
        {
            "num_images": num_rows,
            "num_captions": int(text_emb.shape[0]),
            "positive_similarity_mean": float(positives.mean()),
            "negative_similarity_mean": float(negatives.mean()) if negatives.size else float("nan"),
            **bad_inputs,
        }
    )
    if shards.is_main_process:
        _write_outputs(Path(output_dir), model, records, ranks, metrics, positives, negatives, ks, num_listed)
    return metrics


def _write_outputs(
    output_dir: Path,
    model: Any,
    records: list[dict],
    ranks: Any,
    metrics: dict[str, Any],
    positives: np.ndarray,
    negatives: np.ndarray,
    ks: Sequence[int],
    num_listed: int,
) -> None:
    all_captions = [caption for record in records for caption in record["captions"]]
    image_ids = [record["image_id"] for record in records]
    predictions = []
    caption_index = 0
    for index, record in enumerate(records):
        caption_rows = []
        for caption in record["captions"]:
            caption_rows.append(
                {
                    "text": caption,
                    "t2i_rank": int(ranks.t2i_rank[caption_index]),
                    "similarity": float(positives[caption_index]),
                    "retrieved_image_ids": [
                        image_ids[i] for i in ranks.t2i_top[caption_index, :num_listed].tolist()
                    ],
                }
            )
            caption_index += 1
        predictions.append(
            {
                "index": index,
                "image_id": record["image_id"],
                "i2t_rank": int(ranks.i2t_rank[index]),
                "retrieved_captions": [all_captions[j] for j in ranks.i2t_top[index, :num_listed].tolist()],
                "captions": caption_rows,
            }
        )

    output_dir.mkdir(parents=True, exist_ok=True)
    plot_recall_curves(
        {"image -> text": ranks.i2t_rank.numpy(), "text -> image": ranks.t2i_rank.numpy()},
        output_dir / "recall_curves.png",
        max_k=max(100, max(ks)),
    )
    plot_similarity_histogram(
        positives, negatives, output_dir / "similarity_histogram.png",
        title="caption-image similarity: own image vs a random other image",
    )  # fmt: skip
    recall_rows = [
        (f"R@{k}", f"{metrics[f'i2t_r{k}'] * 100:.2f}", f"{metrics[f't2i_r{k}'] * 100:.2f}") for k in ks
    ]
    recall_keys = {f"{direction}_r{k}" for direction in ("i2t", "t2i") for k in ks}
    report = TaskReport(
        title="Image-text retrieval evaluation",
        summary=dict(metrics),
        percent_keys=recall_keys,
        sections={
            "Setup": (
                f"Model: `{type(model).__name__}`. {metrics['num_images']} images, {metrics['num_captions']} "
                "captions. A positive's rank is the number of negatives with a cosine similarity at least "
                "as high (ties count against the model); image-to-text uses each image's best caption."
            ),
            "Recall (%)": markdown_table(["K", "image -> text", "text -> image"], recall_rows),
        },
        figures={
            "recall_curves.png": "Recall@K curves",
            "similarity_histogram.png": "Similarity of positive vs negative pairs",
        },
    )
    write_task_outputs(output_dir, metrics=metrics, predictions=predictions, report=report)
    print_summary(report)
    logger.info("retrieval results written to %s", output_dir)
