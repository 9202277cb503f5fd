"""VQA task: pick the best-scoring candidate answer per question, score it with VQAv2 accuracy.

Dataset schema: ``image`` (PIL), ``question`` (str), ``answers`` (list of str, every annotator's
answer), ``question_type`` (str), ``candidates`` (list of str; when empty, the candidates are all the
distinct answers found anywhere in the dataset, sorted), ``question_id``.

Datasets with a ``category`` column (e.g. ``easyvqa-reworded``: how each question was re-worded) also
get ``vqa_accuracy_by_category``, ``yes_no_answered_yes_no`` (the share of yes/no questions, those whose
answers are all yes or no, answered with yes or no, whether right or wrong) and its value per category,
in ``metrics.json`` and ``report.md``; each prediction then records its category.

A row with an empty question is an error naming the row. Models that truncate long queries (VL-JEPA's
``num_truncated_queries``) get ``num_truncated_questions`` in ``metrics.json``: how many were cut.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from eval.artifacts import TaskReport, markdown_table, print_summary, write_task_outputs
from eval.distributed import gather_records, resolve_shards, shard_indices
from eval.plots import plot_accuracy_by_group, plot_confusion_matrix, plot_similarity_histogram
from eval.protocol import check_embedding_model
from eval.runners.common import (
    batches,
    check_batch_size,
    check_text,
    check_text_list,
    column,
    dataset_length,
    image_rows,
    image_view,
    model_output,
    progress,
    split_skipped,
)
from eval.vqa import accuracy_by_group, is_yes_no_question, normalize_answer, vqa_accuracy, yes_no_answer_rate

logger = logging.getLogger(__name__)

TASK = "VQA"
FIELDS = ("image", "question", "answers", "question_type", "candidates", "question_id")
CATEGORY_FIELD = "category"


def has_category(dataset: Any) -> bool:
    """Whether the dataset has a ``category`` column (a ``datasets.Dataset`` column or a key of row 0)."""
    column_names = getattr(dataset, "column_names", None)
    if column_names is not None:
        return CATEGORY_FIELD in column_names
    return CATEGORY_FIELD in dataset[0]


def dataset_answer_set(dataset: Any) -> list[str]:
    """Every distinct ground-truth answer in the dataset, sorted (the fallback candidate list)."""
    answers: set[str] = set()
    for index, row_answers in enumerate(column(dataset, "answers", TASK)):
        answers.update(check_text_list(row_answers, index, "answers", TASK, allow_empty=False))
    return sorted(answers)


def _positions_by_form(candidates: list[str]) -> dict[str, list[int]]:
    """Normalised answer -> positions in ``candidates`` (finds the correct candidates in O(#answers))."""
    positions: dict[str, list[int]] = defaultdict(list)
    for position, candidate in enumerate(candidates):
        positions[normalize_answer(candidate)].append(position)
    return positions


class _Candidates:
    """Candidate lists per row; the shared fallback list (all dataset answers) is indexed once."""

    def __init__(self, dataset: Any) -> None:
        per_row = column(dataset, "candidates", TASK)
        for index, candidates in enumerate(per_row):
            check_text_list(candidates, index, "candidates", TASK, allow_empty=True)
        self.uses_fallback = [not candidates for candidates in per_row]
        self.fallback: list[str] = dataset_answer_set(dataset) if any(self.uses_fallback) else []
        self.fallback_positions = _positions_by_form(self.fallback)

    def for_row(self, index: int, row: dict[str, Any]) -> tuple[list[str], dict[str, list[int]]]:
        if self.uses_fallback[index]:
            return self.fallback, self.fallback_positions
        candidates = list(row["candidates"])
        return candidates, _positions_by_form(candidates)


def _score_batch(
    model: Any,
    rows: list[dict],
    batch: list[int],
    candidates: _Candidates,
    batch_size: int,
    num_negatives: int,
    images: list,
    with_category: bool = False,
) -> list[dict[str, Any]]:
    questions = [check_text(row["question"], index, "question", TASK) for row, index in zip(rows, batch)]
    for row, question, index in zip(rows, questions, batch):
        if not question.strip():
            raise ValueError(
                f"{TASK}: dataset row {index} (question_id {row.get('question_id')!r}) has an empty question; "
                "every VQA row needs one: fix or drop the row (an empty query is for captioning)"
            )
    answers = [
        check_text_list(row["answers"], i, "answers", TASK, allow_empty=False) for row, i in zip(rows, batch)
    ]
    types = [
        check_text(row["question_type"], index, "question_type", TASK) for row, index in zip(rows, batch)
    ]
    lists = [candidates.for_row(index, row) for index, row in zip(batch, rows)]
    with torch.inference_mode():
        scores = model_output(
            model.answer_scores(images, questions, [cands for cands, _ in lists], batch_size=batch_size),
            rows=len(batch), method="answer_scores", model=model,
        )  # fmt: skip
    records = []
    for position, index in enumerate(batch):
        cands, positions_by_form = lists[position]
        if scores.shape[1] < len(cands):
            raise ValueError(
                f"{type(model).__name__}.answer_scores returned {scores.shape[1]} columns for row {index}, "
                f"which has {len(cands)} candidates"
            )
        row_scores = scores[position, : len(cands)]
        if np.isnan(row_scores).any() or not np.isfinite(row_scores).any():
            raise ValueError(
                f"{TASK}: the model gave NaN or no finite score for the candidates of row {index}"
            )
        order = np.argsort(-row_scores, kind="stable")
        prediction = cands[int(order[0])]
        is_positive = np.zeros(len(cands), dtype=bool)
        for form in {normalize_answer(answer) for answer in answers[position]}:
            is_positive[positions_by_form.get(form, [])] = True
        negative_scores = row_scores[~is_positive]
        rng = np.random.default_rng(index)  # per-example seed: the sample does not depend on sharding
        sample = rng.choice(
            negative_scores.size, size=min(num_negatives, negative_scores.size), replace=False
        )
        record = {
            "index": index,
            "question_id": rows[position]["question_id"],
            "question": questions[position],
            "question_type": types[position],
            "answers": answers[position],
            "prediction": prediction,
            "accuracy": vqa_accuracy(prediction, answers[position]),
            "num_candidates": len(cands),
            "used_dataset_answers": candidates.uses_fallback[index],
            "top": [{"answer": cands[int(i)], "score": float(row_scores[i])} for i in order[:5]],
            "positive_scores": row_scores[is_positive].tolist(),
            "negative_scores": negative_scores[sample].tolist(),
        }
        if with_category:
            record["category"] = check_text(rows[position][CATEGORY_FIELD], index, CATEGORY_FIELD, TASK)
        records.append(record)
    return records


def run_vqa(
    model: Any,
    dataset: Any,
    *,
    output_dir: str | Path,
    batch_size: int = 32,
    accelerator: Any | None = None,
    negatives_per_question: int = 5,
    confusion_labels: int = 15,
    on_bad_input: str = "error",
) -> dict[str, Any]:
    """VQAv2 accuracy (overall and per question type); writes metrics, predictions, report and plots.

    Args:
        model: an :class:`eval.protocol.EmbeddingModel` (its ``answer_scores`` ranks the candidates).
        dataset: rows with the VQA schema (see the module docstring).
        output_dir: where the main process writes its files.
        batch_size: questions per model call.
        accelerator: ``None``, an ``accelerate.Accelerator`` or an :class:`eval.distributed.ShardContext`.
        negatives_per_question: wrong-candidate scores sampled per question for the histogram.
        confusion_labels: how many of the most frequent answers the confusion matrix shows.
        on_bad_input: an image that cannot be decoded: ``"error"`` raises naming the row and file; ``"skip"``
            leaves its question out and lists it in the metrics (``skipped_bad_inputs``, ``bad_inputs``).
    """
    check_embedding_model(model, task=TASK)
    check_batch_size(batch_size)
    shards = resolve_shards(accelerator)
    num_rows = dataset_length(dataset, TASK)
    dataset = image_view(dataset)
    candidates = _Candidates(dataset)
    with_category = has_category(dataset)
    fields = (*FIELDS, CATEGORY_FIELD) if with_category else FIELDS
    indices = shard_indices(num_rows, shards)
    truncated_before = getattr(model, "num_truncated_queries", None)  # models that truncate long queries count them
    records = []
    num_batches = (len(indices) + batch_size - 1) // batch_size
    for batch in progress(batches(indices, batch_size), total=num_batches, desc="VQA", shards=shards):
        rows, batch, images, skipped = image_rows(dataset, batch, fields, TASK, on_bad_input)
        records += skipped
        if batch:
            records += _score_batch(
                model, rows, batch, candidates, batch_size, negatives_per_question, images, with_category
            )
    records, bad_inputs = split_skipped(gather_records(records, shards, num_rows), TASK)
    truncated = None
    if truncated_before is not None:
        truncated = sum(shards.gather_object([model.num_truncated_queries - truncated_before]))

    by_type: dict[str, list[float]] = defaultdict(list)
    for record in records:
        by_type[record["question_type"]].append(record["accuracy"])
    metrics: dict[str, Any] = {
        "vqa_accuracy": float(np.mean([record["accuracy"] for record in records])),
        "vqa_accuracy_by_type": {name: float(np.mean(values)) for name, values in sorted(by_type.items())},
        "num_questions": len(records),
        "num_question_types": len(by_type),
        "mean_num_candidates": float(np.mean([record["num_candidates"] for record in records])),
        "num_questions_scored_on_dataset_answers": int(sum(candidates.uses_fallback[r["index"]] for r in records)),
        **bad_inputs,
    }
    if truncated is not None:
        metrics["num_truncated_questions"] = int(truncated)
        if truncated:
            logger.warning("%d questions were longer than the model's query limit and were truncated", truncated)
    if with_category:
        metrics.update(category_metrics(records))
    if shards.is_main_process:
        counts = {name: len(values) for name, values in by_type.items()}
        _write_outputs(Path(output_dir), model, records, metrics, counts, confusion_labels)
    return metrics


def category_metrics(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Accuracy per category and the share of yes/no questions answered yes or no (overall, per category)."""
    categories = [record["category"] for record in records]
    by_category: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        by_category[record["category"]].append(record)
    rates = {
        name: yes_no_answer_rate([r["prediction"] for r in group], [r["answers"] for r in group])
        for name, group in sorted(by_category.items())
    }
    return {
        "vqa_accuracy_by_category": accuracy_by_group([record["accuracy"] for record in records], categories),
        "yes_no_answered_yes_no": yes_no_answer_rate(
            [record["prediction"] for record in records], [record["answers"] for record in records]
        ),
        "yes_no_answered_yes_no_by_category": {
            name: rate for name, rate in rates.items() if rate is not None
        },
        "num_yes_no_questions": sum(is_yes_no_question(record["answers"]) for record in records),
    }


def _category_section(records: list[dict[str, Any]], metrics: dict[str, Any]) -> str:
    counts = Counter(record["category"] for record in records)
    yes_no_counts = Counter(record["category"] for record in records if is_yes_no_question(record["answers"]))
    rates = metrics["yes_no_answered_yes_no_by_category"]
    rows = [
        (
            name,
            counts[name],
            f"{accuracy * 100:.2f}",
            yes_no_counts[name],
            f"{rates[name] * 100:.2f}" if name in rates else "-",
        )
        for name, accuracy in metrics["vqa_accuracy_by_category"].items()
    ]
    return markdown_table(
        ["category", "questions", "accuracy (%)", "yes/no questions", "yes/no answered yes/no (%)"], rows
    )


def _write_outputs(
    output_dir: Path,
    model: Any,
    records: list[dict],
    metrics: dict[str, Any],
    type_counts: dict[str, int],
    confusion_labels: int,
) -> None:
    output_dir.mkdir(parents=True, exist_ok=True)
    plot_accuracy_by_group(
        metrics["vqa_accuracy_by_type"], type_counts, output_dir / "accuracy_by_question_type.png",
        title="VQA accuracy per question type",
    )  # fmt: skip
    majority = [normalize_answer(Counter(record["answers"]).most_common(1)[0][0]) for record in records]
    plot_confusion_matrix(
        majority, [normalize_answer(record["prediction"]) for record in records],
        output_dir / "confusion_matrix.png", title="most common ground-truth answer vs prediction",
        max_labels=confusion_labels,
    )  # fmt: skip
    plot_similarity_histogram(
        [s for record in records for s in record["positive_scores"]],
        [s for record in records for s in record["negative_scores"]],
        output_dir / "similarity_histogram.png", title="answer scores: correct vs wrong candidates",
        xlabel="answer score",
    )  # fmt: skip
    predictions = [
        {key: value for key, value in record.items() if key not in ("positive_scores", "negative_scores")}
        for record in records
    ]
    type_rows = [
        (name, type_counts[name], f"{accuracy * 100:.2f}")
        for name, accuracy in sorted(
            metrics["vqa_accuracy_by_type"].items(), key=lambda kv: -type_counts[kv[0]]
        )
    ]
    summary = {key: value for key, value in metrics.items() if not isinstance(value, dict)}
    sections = {}
    if "vqa_accuracy_by_category" in metrics:
        sections["Accuracy per category"] = _category_section(records, metrics)
    report = TaskReport(
        title="VQA evaluation",
        summary=summary,
        percent_keys={"vqa_accuracy", "yes_no_answered_yes_no"},
        sections={
            "Setup": (
                f"Model: `{type(model).__name__}`. {metrics['num_questions']} questions. The prediction is "
                "the highest-scoring candidate; accuracy follows the official VQAv2 script (answer "
                "normalisation, min(#matching annotators / 3, 1) averaged over leave-one-annotator-out "
                "subsets)."
            ),
            "Accuracy per question type": markdown_table(
                ["question type", "questions", "accuracy (%)"], type_rows
            ),
            **sections,
        },
        figures={
            "accuracy_by_question_type.png": "Accuracy per question type",
            "confusion_matrix.png": "Confusion matrix of answers",
            "similarity_histogram.png": "Scores of correct vs wrong candidate answers",
        },
    )
    write_task_outputs(output_dir, metrics=metrics, predictions=predictions, report=report)
    print_summary(report)
    logger.info("VQA results written to %s", output_dir)
