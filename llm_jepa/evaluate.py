"""``llm-jepa eval``: generate answers with a trained model and score them with the task metrics.

    llm-jepa eval --model runs/regex-jepa --dataset regex-synth --split test --limit 200 \\
        --output_dir runs/eval

Generation is batched greedy decoding (left padding, the chat template with the generation prompt, only the
system/user turns as the prompt). Scores per task (:mod:`eval.llm_tasks`): exact match always; regex: string
match and language equivalence side by side, with invalid regexes and timeouts counted; gsm8k: final-answer
match; sql: execution match. So every task has the paper's strict string ``exact_match`` and, where one
exists, its semantic score (:data:`SEMANTIC_SCORES`) side by side; ``--lm_eval_gsm8k true`` adds GSM8K scored with
lm-evaluation-harness's own answer extraction and exact match (:mod:`eval.harness_gsm8k`, the ``[lm-eval]`` extra):
``gsm8k/lm_eval:exact_match,strict-match`` and ``gsm8k/lm_eval:exact_match,flexible-extract``. Regex rows are parsed in the dialect their
data source declares (``regex_dialect``; NL-RX's ``&`` / ``~`` only for ``nl-rx``). Writes ``metrics.json``,
``predictions.jsonl`` and the run metadata.

>>> metrics = evaluate_model(model, tokenizer, dataset, batch_size=8, max_new_tokens=64)   # doctest: +SKIP
>>> metrics["regex/semantic_equivalence"]   # doctest: +SKIP
0.41
"""

from __future__ import annotations

import json
import logging
import sys
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eval.harness_gsm8k import SCORE_PREFIX, harness_scores, load_harness_rules
from eval.llm_tasks import (
    LimitExceeded,
    exact_match,
    gsm8k_final_answer,
    gsm8k_verdict,
    regex_equivalence_verdict,
    regex_string_match,
    sql_execution_verdict,
)
from jepa_core.config import parse_json_mapping

logger = logging.getLogger(__name__)

# Per-task accuracy-type scores (fractions in [0, 1]); other metric keys are counts.
SCORE_NAMES = ("exact_match", "string_match", "semantic_equivalence", "answer_match", "execution_match")
# The task's semantic score beside the strict exact_match (tasks not listed have only exact_match).
SEMANTIC_SCORES = {"regex": "semantic_equivalence", "gsm8k": "answer_match", "sql": "execution_match"}


@dataclass
class LLMJepaEvalArguments:
    """Options of ``llm-jepa eval``."""

    model: str = field(metadata={"help": "Folder written by llm-jepa train (model or adapter + tokenizer)."})
    output_dir: str = field(metadata={"help": "Where metrics.json, predictions.jsonl and run metadata go."})
    dataset: str = field(
        default="regex-synth",
        metadata={"help": "Source for llm_jepa.data.load_messages_dataset (regex-synth, jsonl:PATH, ...)."},
    )
    split: str = field(default="test", metadata={"help": "Split to evaluate."})
    dataset_kwargs: str | None = field(
        default=None,
        metadata={"help": 'JSON object of extra dataset options, e.g. \'{"n": 200, "seed": 0}\'.'},
    )
    limit: int | None = field(default=None, metadata={"help": "Evaluate the first N examples only."})
    max_new_tokens: int = field(default=128, metadata={"help": "Longest generated answer, in tokens."})
    batch_size: int = field(default=8, metadata={"help": "Prompts per generate() call."})
    regex_timeout_s: float = field(
        default=5.0, metadata={"help": "Time limit of one regex equivalence check."}
    )
    sql_timeout_s: float = field(default=5.0, metadata={"help": "Time limit of one SQL query."})
    device: str | None = field(default=None, metadata={"help": "Device for the model (default: CPU)."})
    lm_eval_gsm8k: bool = field(
        default=False,
        metadata={
            "help": "Also score GSM8K rows with lm-evaluation-harness's gsm8k rules (its strict-match and "
            "flexible-extract answer extraction and exact_match, read from the installed lm_eval; offline, on "
            "these predictions). Needs pip install 'jepa-hf[lm-eval]'."
        },
    )

    def __post_init__(self) -> None:
        if self.limit is not None and self.limit <= 0:
            raise ValueError(f"limit must be a positive count, got {self.limit}")
        if self.max_new_tokens <= 0 or self.batch_size <= 0:
            raise ValueError(
                f"max_new_tokens and batch_size must be positive, got {self.max_new_tokens} and "
                f"{self.batch_size}"
            )
        if self.regex_timeout_s <= 0 or self.sql_timeout_s <= 0:
            raise ValueError("regex_timeout_s and sql_timeout_s must be positive")
        self.dataset_options()  # fail early on bad JSON

    def dataset_options(self) -> dict[str, Any]:
        return parse_json_mapping(self.dataset_kwargs, "dataset_kwargs")


def prompt_messages(messages: list[dict[str, str]]) -> list[dict[str, str]]:
    """The turns before the final assistant turn (system + user): what the model is asked."""
    if not messages or messages[-1]["role"] != "assistant":
        raise ValueError("an evaluation example must end with the gold assistant turn")
    return messages[:-1]


def generate_predictions(
    model: Any, tokenizer: Any, dataset: Any, *, batch_size: int = 8, max_new_tokens: int = 128
) -> list[str]:
    """Greedy answers for every row (in dataset order), batched with left padding."""
    import torch
    from tqdm.auto import tqdm

    prompts = [
        tokenizer.apply_chat_template(prompt_messages(m), tokenize=False, add_generation_prompt=True)
        for m in dataset["messages"]
    ]
    # longest first: similar lengths share a batch (less padding) and memory trouble shows at once
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]), reverse=True)
    predictions: list[str] = [""] * len(prompts)
    saved = tokenizer.padding_side, tokenizer.pad_token
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        logger.info("tokenizer has no pad token; padding prompts with the eos token %r", tokenizer.eos_token)
        tokenizer.pad_token = tokenizer.eos_token
    try:
        for start in tqdm(range(0, len(order), batch_size), desc="generating", unit="batch"):
            indices = order[start : start + batch_size]
            batch = tokenizer(
                [prompts[i] for i in indices], return_tensors="pt", padding=True, add_special_tokens=False
            ).to(model.device)
            with torch.inference_mode():
                output = model.generate(
                    **batch,
                    max_new_tokens=max_new_tokens,
                    do_sample=False,
                    num_beams=1,
                    pad_token_id=tokenizer.pad_token_id,
                )
            texts = tokenizer.batch_decode(output[:, batch["input_ids"].shape[1] :], skip_special_tokens=True)
            for index, text in zip(indices, texts):
                predictions[index] = text.strip()
    finally:
        tokenizer.padding_side, tokenizer.pad_token = saved
    return predictions


def score_example(
    row: dict[str, Any], prediction: str, *, regex_timeout_s: float = 5.0, sql_timeout_s: float = 5.0
) -> dict[str, Any]:
    """One predictions.jsonl record: the prediction, the gold answer and every metric that applies."""
    gold = row["messages"][-1]["content"]
    record: dict[str, Any] = {
        "id": row["id"],
        "task": row["task"],
        "prediction": prediction,
        "reference": row["reference"],
        "exact_match": exact_match(prediction, gold),
    }
    try:
        _score_task(record, row, prediction, regex_timeout_s=regex_timeout_s, sql_timeout_s=sql_timeout_s)
    except Exception as err:  # noqa: BLE001 (one hostile output must never end the evaluation)
        logger.warning("example %s: scoring failed (%s: %s); scored as wrong", row["id"], type(err).__name__, err)
        for name in _TASK_SCORES.get(row["task"], ()):
            record[name] = 0.0
        record["scoring_error"] = f"{type(err).__name__}: {err}"[:300]
    return record


_TASK_SCORES = {"regex": ("string_match", "semantic_equivalence"), "gsm8k": ("answer_match",),
                "sql": ("execution_match",)}


def _score_task(record: dict[str, Any], row: dict[str, Any], prediction: str, *, regex_timeout_s: float,
                sql_timeout_s: float) -> None:
    """Add the task's scores, its outcome and (for over_limit / errors) the reason to ``record``."""
    if row["task"] == "regex":
        # the syntax the row's data source declares (NL-RX's & and ~ only for NL-RX-style data)
        dialect = row.get("regex_dialect") or "standard"
        verdict = regex_equivalence_verdict(
            prediction, row["reference"], dialect=dialect, timeout_s=regex_timeout_s
        )
        record.update(
            string_match=float(regex_string_match(prediction, row["reference"])),
            semantic_equivalence=float(verdict.outcome == "equivalent"),
            regex_outcome=verdict.outcome,
        )
    elif row["task"] == "gsm8k":
        verdict = gsm8k_verdict(prediction, row["reference"])
        try:
            predicted = gsm8k_final_answer(prediction)
        except LimitExceeded:
            predicted = None
        record.update(predicted_answer=predicted, answer_match=float(verdict.outcome == "match"),
                      gsm8k_outcome=verdict.outcome)
    elif row["task"] == "sql":
        verdict = sql_execution_verdict(prediction, row["reference"], row["db_path"], timeout_s=sql_timeout_s)
        record.update(execution_match=float(verdict.outcome == "match"), sql_outcome=verdict.outcome)
    else:
        return
    if verdict.reason is not None:
        record["outcome_reason"] = verdict.reason


_COUNTS = {  # task: (outcome field, {outcome: metric name})
    "regex": (
        "regex_outcome",
        {
            "invalid_prediction": "invalid_predictions",
            "invalid_reference": "invalid_references",
            "timeout": "timeouts",
            "over_limit": "over_limit",
        },
    ),
    "sql": (
        "sql_outcome",
        {
            "prediction_error": "prediction_errors",
            "reference_error": "reference_errors",
            "timeout": "timeouts",
            "over_limit": "over_limit",
        },
    ),
    "gsm8k": ("gsm8k_outcome", {"over_limit": "over_limit"}),
}


def add_harness_scores(records: list[dict[str, Any]], dataset: Any) -> None:
    """Add lm-evaluation-harness's GSM8K scores (:func:`eval.harness_gsm8k.harness_scores`) to the gsm8k records;
    the harness's target is the gold solution (the assistant turn), as GSM8K's ``answer`` field."""
    rows = [(record, row) for record, row in zip(records, dataset) if record["task"] == "gsm8k"]
    if not rows:
        return
    scores = harness_scores(
        [record["prediction"] for record, _ in rows], [row["messages"][-1]["content"] for _, row in rows]
    )
    for (record, _), extra in zip(rows, scores):
        record.update(extra)


def aggregate_metrics(records: list[dict[str, Any]]) -> dict[str, float | int]:
    """Flat metrics: ``exact_match`` overall, then ``<task>/<metric>`` means and ``<task>/<count>`` counts."""
    if not records:
        raise ValueError("no predictions to score")
    metrics: dict[str, float | int] = {
        "num_examples": len(records),
        "exact_match": sum(r["exact_match"] for r in records) / len(records),
    }
    by_task: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        by_task[record["task"]].append(record)
    for task, rows in sorted(by_task.items()):
        metrics[f"{task}/num_examples"] = len(rows)
        for name in [*SCORE_NAMES, *(key for key in rows[0] if key.startswith(SCORE_PREFIX))]:
            if name in rows[0]:
                metrics[f"{task}/{name}"] = sum(r[name] for r in rows) / len(rows)
        if task == "gsm8k":
            metrics["gsm8k/no_answer"] = sum(r["predicted_answer"] is None for r in rows)
        errors = sum("scoring_error" in r for r in rows)
        if errors:
            metrics[f"{task}/scoring_errors"] = errors
        if task in _COUNTS:
            outcome_field, names = _COUNTS[task]
            outcomes = Counter(r.get(outcome_field) for r in rows)
            for outcome, name in names.items():
                metrics[f"{task}/{name}"] = outcomes[outcome]
            if outcomes.get("invalid_reference") or outcomes.get("reference_error"):
                logger.warning(
                    "%s: %d gold answers could not be scored (see predictions.jsonl)",
                    task,
                    outcomes.get("invalid_reference", 0) + outcomes.get("reference_error", 0),
                )
    return metrics


def is_score(metric_name: str) -> bool:
    """True for accuracy-type metrics (fractions), False for counts."""
    name = metric_name.rsplit("/", 1)[-1]
    return name in SCORE_NAMES or name.startswith(SCORE_PREFIX)


def write_results(output_dir: str | Path, metrics: dict[str, Any], records: list[dict[str, Any]]) -> Path:
    """``metrics.json`` and ``predictions.jsonl`` in ``output_dir`` (atomic writes)."""
    from jepa_core.rundir import atomic_write_text, write_json

    output_dir = Path(output_dir)
    write_json(output_dir / "metrics.json", metrics)
    atomic_write_text(
        output_dir / "predictions.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    )
    return output_dir


def evaluate_model(
    model: Any,
    tokenizer: Any,
    dataset: Any,
    *,
    batch_size: int = 8,
    max_new_tokens: int = 128,
    output_dir: str | Path | None = None,
    regex_timeout_s: float = 5.0,
    sql_timeout_s: float = 5.0,
    lm_eval_gsm8k: bool = False,
) -> dict[str, float | int]:
    """Generate, score and (with ``output_dir``) write the results; returns the flat metrics dict.

    ``lm_eval_gsm8k`` adds the lm-evaluation-harness GSM8K scores (:func:`add_harness_scores`)."""
    predictions = generate_predictions(
        model, tokenizer, dataset, batch_size=batch_size, max_new_tokens=max_new_tokens
    )
    records = [
        score_example(row, prediction, regex_timeout_s=regex_timeout_s, sql_timeout_s=sql_timeout_s)
        for row, prediction in zip(dataset, predictions)
    ]
    if lm_eval_gsm8k:
        add_harness_scores(records, dataset)
    metrics = aggregate_metrics(records)
    if output_dir is not None:
        write_results(output_dir, metrics, records)
    return metrics


def load_eval_dataset(source: str, split: str, options: dict[str, Any], limit: int | None) -> Any:
    """The messages dataset to score (first ``limit`` rows)."""
    from llm_jepa.data import load_messages_dataset

    dataset = load_messages_dataset(source, split=split, **options)
    return dataset.select(range(limit)) if limit is not None and limit < len(dataset) else dataset


def format_metrics(metrics: dict[str, Any]) -> str:
    width = max(len(name) for name in metrics)
    return "\n".join(
        f"{name:<{width}}  {value:.4f}" if isinstance(value, float) else f"{name:<{width}}  {value}"
        for name, value in metrics.items()
    )


def main(argv: Sequence[str] | None = None) -> int:
    """``llm-jepa eval --model DIR --dataset SOURCE --output_dir DIR [...]``; prints the metrics table."""
    from transformers import HfArgumentParser

    from jepa_core.rundir import write_run_metadata
    from llm_jepa.loading import load_for_inference

    argv = list(sys.argv[1:] if argv is None else argv)
    (args,) = HfArgumentParser(LLMJepaEvalArguments).parse_args_into_dataclasses(args=argv)
    if args.lm_eval_gsm8k:
        load_harness_rules()  # a missing lm-eval fails here, before the model is loaded
    write_run_metadata(args.output_dir, {"eval": args}, argv=["llm-jepa", "eval", *argv])
    dataset = load_eval_dataset(args.dataset, args.split, args.dataset_options(), args.limit)
    model, tokenizer = load_for_inference(args.model, device=args.device)
    metrics = evaluate_model(
        model,
        tokenizer,
        dataset,
        batch_size=args.batch_size,
        max_new_tokens=args.max_new_tokens,
        output_dir=args.output_dir,
        regex_timeout_s=args.regex_timeout_s,
        sql_timeout_s=args.sql_timeout_s,
        lm_eval_gsm8k=args.lm_eval_gsm8k,
    )
    print(format_metrics(metrics))
    logger.info("wrote %s", Path(args.output_dir) / "metrics.json")
    return 0
