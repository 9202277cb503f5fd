"""GSM8K answers scored with lm-evaluation-harness's own rules, on predictions made elsewhere (offline).

lm-evaluation-harness (``pip install 'jepa-hf[lm-eval]'``) defines its ``gsm8k`` task in the YAML file
``lm_eval/tasks/gsm8k/gsm8k.yaml``: answer-extraction pipelines (``filter_list``: ``strict-match`` takes the number
after ``#### ``; ``flexible-extract`` the last number anywhere) and the metric (``metric_list``: ``exact_match``
after removing ``,``, ``$``, everything up to ``#### `` and a final ``.``, case-insensitive). This module reads that
file from the installed package, runs the harness's registered filters and metric functions on our predictions and
gold solutions, and reports one score per (metric, filter), named as the harness names them
(``exact_match,strict-match``). Nothing is re-typed, no dataset is downloaded and no model runs.

The harness's generation settings (its 5-shot ``Question: ... Answer:`` prompt, stop strings) do not apply: the
scores equal the harness's on the same generated texts, not on a harness run of the model.

>>> scores = harness_scores(["so 6 + 2 = 8\\n#### 8"], ["... #### 8"])   # doctest: +SKIP
>>> scores[0]["lm_eval:exact_match,strict-match"], scores[0]["lm_eval_answers"]["strict-match"]   # doctest: +SKIP
(1.0, '8')
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

EXTRA = "lm-eval"
PURPOSE = "GSM8K scored with lm-evaluation-harness's rules (llm-jepa eval --lm_eval_gsm8k)"
SCORE_PREFIX = "lm_eval:"  # record / metric keys: "lm_eval:<metric>,<filter>", the harness's "<metric>,<filter>"
ANSWERS_KEY = "lm_eval_answers"  # record key: {filter name: the extracted answer}
# metric_list keys that configure lm-eval itself rather than the metric function (as lm-eval's task loader skips)
_NOT_METRIC_KWARGS = ("metric", "aggregation", "higher_is_better", "hf_evaluate")


@dataclass(frozen=True)
class HarnessRules:
    """A task's scoring rules as read from the installed lm-eval.

    Attributes:
        source: the task YAML they were read from.
        version: the installed lm-eval version.
        filters: ``(filter name, ((filter function, kwargs), ...))`` pipelines, in the YAML's order.
        metrics: ``(metric name, kwargs)`` pairs of its ``metric_list``.
    """

    source: Path
    version: str
    filters: tuple[tuple[str, tuple[tuple[str, dict[str, Any]], ...]], ...]
    metrics: tuple[tuple[str, dict[str, Any]], ...]

    def score_names(self) -> list[str]:
        """Record keys of the scores, ``lm_eval:<metric>,<filter>`` for every metric and filter."""
        return [f"{SCORE_PREFIX}{metric},{name}" for metric, _ in self.metrics for name, _ in self.filters]


def _lm_eval() -> Any:
    from jepa_core.extras import require

    return require("lm_eval", extra=EXTRA, purpose=PURPOSE)


def load_harness_rules(task: str = "gsm8k") -> HarnessRules:
    """The ``filter_list`` and ``metric_list`` of ``lm_eval/tasks/<task>/<task>.yaml`` in the installed lm-eval.

    Raises :class:`~jepa_core.extras.MissingExtraError` without lm-eval, ``ValueError`` naming the file when it
    does not hold the expected sections (a layout this reader does not know).
    """
    import yaml

    lm_eval = _lm_eval()
    from importlib.metadata import version

    source = Path(lm_eval.__file__).parent / "tasks" / task / f"{task}.yaml"
    if not source.is_file():
        raise ValueError(f"the installed lm-eval has no task file {source}; this scorer reads lm-eval 0.4's layout")
    config = yaml.safe_load(source.read_text(encoding="utf-8"))
    try:
        filters = tuple(
            (entry["name"], tuple(
                (step["function"], {k: v for k, v in step.items() if k != "function"}) for step in entry["filter"]
            ))
            for entry in config["filter_list"]
        )
        metrics = tuple(
            (entry["metric"], {k: v for k, v in entry.items() if k not in _NOT_METRIC_KWARGS})
            for entry in config["metric_list"]
        )
    except (KeyError, TypeError) as err:
        raise ValueError(
            f"{source}: expected 'filter_list' (name, filter: [function, ...]) and 'metric_list' (metric, ...) "
            f"sections, as in lm-eval 0.4 ({type(err).__name__}: {err})"
        ) from err
    if not filters or not metrics:
        raise ValueError(f"{source}: no filters or no metrics to score with")
    return HarnessRules(source=source, version=version("lm_eval"), filters=filters, metrics=metrics)


def _extract(steps: tuple[tuple[str, dict[str, Any]], ...], predictions: Sequence[str]) -> list[str]:
    """Run one filter pipeline of registered lm-eval filters; one extracted string per prediction."""
    import lm_eval.filters  # noqa: F401  (importing it registers the built-in filters)
    from lm_eval.api.registry import get_filter

    responses: Any = [[prediction] for prediction in predictions]  # the harness's shape: responses per document
    docs = [{} for _ in predictions]  # the gsm8k filters never read the document
    for function, kwargs in steps:
        responses = list(get_filter(function)(**kwargs).apply(responses, docs))
    return [r if isinstance(r, str) else r[0] for r in responses]  # after take_first: one string each


def _metric(name: str, kwargs: dict[str, Any], prediction: str, gold: str) -> float:
    """One lm-eval metric on one document, called the way the harness's task does (lists of one)."""
    from lm_eval.api.registry import get_metric

    function = get_metric(name)
    if function is None:
        raise ValueError(f"lm-eval has no metric {name!r}")
    value = function(references=[gold], predictions=[prediction], **kwargs)
    return float(value[name] if isinstance(value, dict) else value)


def harness_scores(
    predictions: Sequence[str], golds: Sequence[str], rules: HarnessRules | None = None
) -> list[dict[str, Any]]:
    """Per prediction: ``{"lm_eval:<metric>,<filter>": score, ..., "lm_eval_answers": {filter: answer}}``.

    Args:
        predictions: generated texts.
        golds: the gold solutions (the harness's target is GSM8K's full ``answer`` text, ``... #### 42``).
        rules: from :func:`load_harness_rules` (default: the installed ``gsm8k`` task).
    """
    if len(predictions) != len(golds):
        raise ValueError(f"{len(predictions)} predictions but {len(golds)} gold answers")
    rules = rules or load_harness_rules()
    records: list[dict[str, Any]] = [{ANSWERS_KEY: {}} for _ in predictions]
    for filter_name, steps in rules.filters:
        for record, answer, gold in zip(records, _extract(steps, predictions), golds):
            record[ANSWERS_KEY][filter_name] = answer
            for metric, kwargs in rules.metrics:
                record[f"{SCORE_PREFIX}{metric},{filter_name}"] = _metric(metric, kwargs, answer, gold)
    return records
