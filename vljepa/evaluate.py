"""Evaluation glue: run an :mod:`eval.runners` task on a VL-JEPA or dual-encoder model.

The runners only call the model's public inference API (``embed_images``, ``embed_texts``,
``answer_scores``), so the same code scores both models. Used by the trainer (periodic and final
evaluation) and by ``vljepa eval``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Literal

logger = logging.getLogger(__name__)

EvalTask = Literal["retrieval", "zeroshot", "vqa", "captioning"]
EVAL_TASKS = ("retrieval", "zeroshot", "vqa", "captioning")


def load_dataset_for_eval(
    name: str, split: str, accelerator: Any | None = None, kwargs: dict[str, Any] | None = None
):
    """``load_vl_dataset(name, split, **kwargs)``, built by the main process first when distributed."""
    from vljepa.data import load_vl_dataset

    if accelerator is None:
        return load_vl_dataset(name, split, **(kwargs or {}))
    with accelerator.main_process_first():
        return load_vl_dataset(name, split, **(kwargs or {}))


def load_eval_dataset(args: Any, accelerator: Any | None = None):
    """The evaluation dataset named by a :class:`~vljepa.training.arguments.TrainingArguments`."""
    return load_dataset_for_eval(args.eval_dataset, args.eval_split, accelerator, json.loads(args.eval_dataset_kwargs))


def evaluate_model(
    model: Any, *, task: str, dataset: Any, output_dir: str | Path, batch_size: int = 128,
    accelerator: Any | None = None, on_bad_input: str = "error",
) -> dict[str, Any]:
    """Run the ``task`` runner; it writes ``metrics.json``, ``predictions.jsonl``, ``report.md`` into ``output_dir``.

    ``on_bad_input``: an image that cannot be decoded raises naming its row and file (``"error"``), or its row
    is left out and listed in ``metrics.json`` (``"skip"``)."""
    from eval import runners

    run = {
        "retrieval": runners.run_retrieval,
        "zeroshot": runners.run_zeroshot,
        "vqa": runners.run_vqa,
        "captioning": runners.run_captioning,
    }.get(task)
    if run is None:
        raise ValueError(f"unknown evaluation task {task!r}; choose from {', '.join(EVAL_TASKS)}")
    logger.info("Evaluating %s on %d rows -> %s", task, len(dataset), output_dir)
    predictor = getattr(model, "predictor", None)  # the dual encoder has none
    if task == "vqa" and predictor is not None:  # the query context of every distinct question, batched
        predictor.prefill_query_context(list(dataset["question"]))
    return run(
        model, dataset, output_dir=output_dir, batch_size=batch_size, accelerator=accelerator, on_bad_input=on_bad_input
    )
