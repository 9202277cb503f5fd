"""Zero-shot classification task: images against prompt-averaged class embeddings, top-1 / top-5.

Dataset schema: ``image`` (PIL), ``label`` (int index into ``class_names``).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from eval.artifacts import TaskReport, markdown_table, print_summary, write_task_outputs
from eval.distributed import gather_records, resolve_shards, shard_indices
from eval.plots import plot_confusion_matrix, plot_similarity_histogram
from eval.protocol import check_embedding_model
from eval.runners.common import (
    batches,
    check_batch_size,
    dataset_length,
    image_rows,
    image_view,
    model_output,
    progress,
    split_skipped,
)
from eval.zeroshot import DEFAULT_TEMPLATES, accuracy_from_ranks, class_embeddings, class_scores, label_ranks

logger = logging.getLogger(__name__)

TASK = "zero-shot classification"
FIELDS = ("image", "label")


def resolve_class_names(dataset: Any, class_names: Sequence[str] | None) -> list[str]:
    """``class_names`` if given, else the names of a ``datasets.ClassLabel`` ``label`` feature."""
    if class_names is not None:
        names = list(class_names)
    else:
        feature = (getattr(dataset, "features", None) or {}).get("label")
        if feature is None or not hasattr(feature, "names"):
            raise ValueError(
                f"{TASK}: pass class_names=[...] (the dataset's 'label' column is not a datasets.ClassLabel "
                "that would name the classes)"
            )
        names = list(feature.names)
    if not names or not all(isinstance(name, str) and name for name in names):
        raise ValueError(f"{TASK}: class_names must be a non-empty list of non-empty strings, got {names!r}")
    if len(set(names)) != len(names):
        raise ValueError(
            f"{TASK}: class_names has duplicates: {sorted({n for n in names if names.count(n) > 1})}"
        )
    return names


def _check_label(value: Any, index: int, num_classes: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(
            f"{TASK}: dataset row {index} field 'label' must be an int class index, got {value!r}"
        )
    if not 0 <= int(value) < num_classes:
        raise ValueError(f"{TASK}: dataset row {index} has label {value}, outside 0..{num_classes - 1}")
    return int(value)


def run_zeroshot(
    model: Any,
    dataset: Any,
    *,
    output_dir: str | Path,
    class_names: Sequence[str] | None = None,
    templates: Sequence[str] = DEFAULT_TEMPLATES,
    batch_size: int = 32,
    accelerator: Any | None = None,
    ks: Sequence[int] = (1, 5),
    on_bad_input: str = "error",
) -> dict[str, Any]:
    """Top-k zero-shot accuracy; writes metrics, predictions, report and plots.

    Args:
        model: an :class:`eval.protocol.EmbeddingModel`.
        dataset: rows with ``image`` and ``label``.
        output_dir: where the main process writes its files.
        class_names: one name per label index (default: the dataset's ``ClassLabel`` names).
        templates: prompt templates with one ``{}`` each; a class embedding averages them.
        batch_size: images per model call.
        accelerator: ``None``, an ``accelerate.Accelerator`` or an :class:`eval.distributed.ShardContext`.
        ks: the k of top-k accuracy (a k above the number of classes gives 1.0).
        on_bad_input: an image that cannot be decoded: ``"error"`` raises naming the row and file; ``"skip"``
            leaves the row out and lists it in the metrics (``skipped_bad_inputs``, ``bad_inputs``).
    """
    check_embedding_model(model, task=TASK)
    check_batch_size(batch_size)
    names = resolve_class_names(dataset, class_names)
    shards = resolve_shards(accelerator)
    num_rows = dataset_length(dataset, TASK)
    dataset = image_view(dataset)
    with torch.inference_mode():
        class_emb = class_embeddings(model.embed_texts, names, templates, batch_size=batch_size)
    num_listed = min(5, len(names))

    records = []
    indices = shard_indices(num_rows, shards)
    num_batches = (len(indices) + batch_size - 1) // batch_size
    for batch in progress(batches(indices, batch_size), total=num_batches, desc="zero-shot", shards=shards):
        rows, batch, images, skipped = image_rows(dataset, batch, FIELDS, TASK, on_bad_input)
        records += skipped
        if not batch:
            continue
        labels = [_check_label(row["label"], index, len(names)) for row, index in zip(rows, batch)]
        with torch.inference_mode():
            image_emb = model_output(
                model.embed_images(images, batch_size=batch_size),
                rows=len(batch),
                method="embed_images",
                model=model,
            )
        scores = class_scores(image_emb, class_emb)
        ranks = label_ranks(scores, labels)
        top = torch.topk(scores, num_listed, dim=1)
        for position, (index, label) in enumerate(zip(batch, labels)):
            others = torch.cat([scores[position, :label], scores[position, label + 1 :]])
            records.append(
                {
                    "index": index,
                    "label": label,
                    "rank": int(ranks[position]),
                    "top_classes": top.indices[position].tolist(),
                    "top_scores": top.values[position].tolist(),
                    "true_score": float(scores[position, label]),
                    "best_other_score": float(others.max()) if others.numel() else float("nan"),
                }
            )
    records, bad_inputs = split_skipped(gather_records(records, shards, num_rows), TASK)

    metrics: dict[str, Any] = dict(accuracy_from_ranks([record["rank"] for record in records], ks))
    by_class: dict[str, list[int]] = defaultdict(list)
    for record in records:
        by_class[names[record["label"]]].append(record["rank"] == 0)
    metrics.update(
        {
            "num_examples": len(records),
            **bad_inputs,
            "num_classes": len(names),
            "num_templates": len(templates),
            "top1_by_class": {name: float(np.mean(hits)) for name, hits in sorted(by_class.items())},
        }
    )
    if shards.is_main_process:
        _write_outputs(Path(output_dir), model, records, names, metrics, ks)
    return metrics


def _write_outputs(
    output_dir: Path,
    model: Any,
    records: list[dict],
    names: list[str],
    metrics: dict[str, Any],
    ks: Sequence[int],
) -> None:
    predictions = [
        {
            "index": record["index"],
            "label": record["label"],
            "label_name": names[record["label"]],
            "prediction": record["top_classes"][0],
            "prediction_name": names[record["top_classes"][0]],
            "rank": record["rank"],
            "top": [
                {"class": names[cls], "score": score}
                for cls, score in zip(record["top_classes"], record["top_scores"])
            ],
        }
        for record in records
    ]
    output_dir.mkdir(parents=True, exist_ok=True)
    plot_confusion_matrix(
        [p["label_name"] for p in predictions], [p["prediction_name"] for p in predictions],
        output_dir / "confusion_matrix.png", title="zero-shot predictions (most frequent classes)",
    )  # fmt: skip
    plot_similarity_histogram(
        [r["true_score"] for r in records], [r["best_other_score"] for r in records],
        output_dir / "similarity_histogram.png", title="image vs true class and vs best wrong class",
    )  # fmt: skip
    class_counts = defaultdict(int)
    for record in records:
        class_counts[names[record["label"]]] += 1
    class_rows = [
        (name, class_counts[name], f"{accuracy * 100:.2f}")
        for name, accuracy in metrics["top1_by_class"].items()
    ]
    summary = {key: value for key, value in metrics.items() if not isinstance(value, dict)}
    report = TaskReport(
        title="Zero-shot classification evaluation",
        summary=summary,
        percent_keys={f"top{int(k)}" for k in ks},
        sections={
            "Setup": (
                f"Model: `{type(model).__name__}`. {metrics['num_examples']} images, "
                f"{metrics['num_classes']} classes, {metrics['num_templates']} prompt templates averaged "
                "per class."
            ),
            "Top-1 accuracy per class": markdown_table(["class", "images", "top-1 (%)"], class_rows),
        },
        figures={
            "confusion_matrix.png": "Confusion matrix",
            "similarity_histogram.png": "Similarity to the true class vs the best wrong class",
        },
    )
    write_task_outputs(output_dir, metrics=metrics, predictions=predictions, report=report)
    print_summary(report)
    logger.info("zero-shot results written to %s", output_dir)
