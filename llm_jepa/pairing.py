"""Per-example pairing of the two arms of ``llm-jepa compare``, and their training curves.

Each run's evaluation writes ``predictions.jsonl`` (one scored record per test example, see
:func:`llm_jepa.evaluate.score_example`). For every seed the baseline's and LLM-JEPA's records are paired
by example ``id``; the (seeds, items) 0/1 outcome matrices then go to :mod:`eval.paired_stats` (exact
McNemar on the discordant pairs pooled over seeds, and an item bootstrap CI of the accuracy difference).

Two scorings, side by side:

* ``semantic``: the task's own notion of a correct answer: regex language equivalence, GSM8K final
  answer, SQL execution result (``exact_match`` for tasks without one);
* ``strict``: the paper's string exact match of the whole answer (whitespace-normalised).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from eval.paired_stats import DEFAULT_BOOTSTRAP_RESAMPLES, DEFAULT_BOOTSTRAP_SEED, paired_example_stats
from llm_jepa.evaluate import SEMANTIC_SCORES

SCORINGS = ("semantic", "strict")
SCORING_TITLES = {
    "semantic": "semantic (regex equivalence / GSM8K answer / SQL execution)",
    "strict": "strict string exact match (the paper's)",
}


def example_outcome(record: dict[str, Any], scoring: str) -> float:
    """1.0 or 0.0: whether one scored prediction is correct under ``scoring`` (``semantic`` or ``strict``)."""
    if scoring == "strict":
        return float(record["exact_match"])
    if scoring == "semantic":
        return float(record[SEMANTIC_SCORES.get(record["task"], "exact_match")])
    raise ValueError(f"scoring must be one of {SCORINGS}, got {scoring!r}")


def read_predictions(path: str | Path) -> list[dict[str, Any]]:
    """The records of one ``predictions.jsonl`` (written by ``llm-jepa eval`` / ``evaluate_model``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing: the per-example statistics need each run's predictions; delete the run's "
            "compare_run.json to train and score it again"
        )
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def _by_id(records: Sequence[dict[str, Any]], where: str) -> dict[str, dict[str, Any]]:
    indexed: dict[str, dict[str, Any]] = {}
    for record in records:
        if record["id"] in indexed:
            raise ValueError(f"{where}: example id {record['id']!r} appears twice; ids must be unique to pair")
        indexed[record["id"]] = record
    return indexed


def _id_difference(left: Sequence[str], right: Sequence[str]) -> str:
    only_left, only_right = sorted(set(left) - set(right)), sorted(set(right) - set(left))
    return f"only in the first: {only_left[:5]}; only in the second: {only_right[:5]}"


def paired_records(
    baseline_runs: Sequence[Sequence[dict[str, Any]]],
    treatment_runs: Sequence[Sequence[dict[str, Any]]],
    seeds: Sequence[int],
) -> tuple[list[str], list[tuple[list[dict[str, Any]], list[dict[str, Any]]]]]:
    """Align every seed's two arms by example id: ``(ids, [(baseline records, treatment records)] per seed)``.

    Raises ``ValueError`` naming the seed and the ids when the arms (or two seeds) scored different examples.
    """
    if not (len(baseline_runs) == len(treatment_runs) == len(seeds)) or not seeds:
        raise ValueError("need one list of predictions per seed and per arm")
    ids: list[str] | None = None
    aligned = []
    for seed, base_records, treat_records in zip(seeds, baseline_runs, treatment_runs):
        base = _by_id(base_records, f"seed {seed}, baseline predictions")
        treat = _by_id(treat_records, f"seed {seed}, LLM-JEPA predictions")
        if set(base) != set(treat):
            raise ValueError(
                f"seed {seed}: the baseline and LLM-JEPA predictions hold different example ids, so they cannot "
                f"be paired ({_id_difference(list(base), list(treat))}); score both arms on the same split"
            )
        if ids is None:
            ids = list(base)
        elif set(ids) != set(base):
            raise ValueError(
                f"seed {seed} scored other examples than seed {seeds[0]} ({_id_difference(ids, list(base))}); "
                "every run must be scored on the same evaluation set"
            )
        aligned.append(([base[i] for i in ids], [treat[i] for i in ids]))
    return ids or [], aligned


def example_statistics(
    baseline_runs: Sequence[Sequence[dict[str, Any]]],
    treatment_runs: Sequence[Sequence[dict[str, Any]]],
    seeds: Sequence[int],
    *,
    num_resamples: int = DEFAULT_BOOTSTRAP_RESAMPLES,
    bootstrap_seed: int = DEFAULT_BOOTSTRAP_SEED,
) -> dict[str, dict[str, Any]]:
    """Per scoring: the paired table pooled over seeds, McNemar's exact p, the item bootstrap CI of the
    difference, and each seed's accuracy per arm (``per_seed``)."""
    ids, aligned = paired_records(baseline_runs, treatment_runs, seeds)
    result: dict[str, dict[str, Any]] = {}
    for scoring in SCORINGS:
        base = np.array([[example_outcome(r, scoring) for r in pair[0]] for pair in aligned])
        treat = np.array([[example_outcome(r, scoring) for r in pair[1]] for pair in aligned])
        stats = paired_example_stats(base, treat, num_resamples=num_resamples, seed=bootstrap_seed)
        stats["num_items"] = len(ids)
        stats["per_seed"] = {"baseline": base.mean(axis=1).tolist(), "llm_jepa": treat.mean(axis=1).tolist()}
        result[scoring] = stats
    return result


def training_curve(run_dir: str | Path, key: str = "lm_loss") -> tuple[list[int], list[float]] | None:
    """``(steps, values)`` of ``key`` from a run's ``trainer_state.json`` log history; None without one."""
    state_file = Path(run_dir) / "trainer_state.json"
    if not state_file.is_file():
        return None
    history = json.loads(state_file.read_text()).get("log_history", [])
    points = [(int(entry["step"]), float(entry[key])) for entry in history if key in entry and "step" in entry]
    if not points:
        return None
    steps, values = zip(*points)
    return list(steps), list(values)
