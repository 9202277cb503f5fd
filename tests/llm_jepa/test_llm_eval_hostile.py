"""Hostile model outputs: each cap of eval.llm_tasks scores the output as wrong with a reason, within bounded
time and memory, and an evaluation over such outputs finishes with the rest scored normally."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from eval import llm_tasks
from eval.llm_tasks import (
    MAX_NUMBER_DIGITS,
    LimitExceeded,
    gsm8k_answer_match,
    gsm8k_verdict,
    normalize_number,
    regex_equivalence_outcome,
    regex_equivalence_verdict,
    regex_to_fsm,
    sql_execution_verdict,
)
from llm_jepa.evaluate import aggregate_metrics, score_example

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def shop_db(tmp_path):
    path = tmp_path / "shop.sqlite"
    with sqlite3.connect(path) as connection:
        connection.executescript("CREATE TABLE item (name TEXT); INSERT INTO item VALUES ('pen'), ('book');")
    connection.close()
    return str(path)


@pytest.mark.parametrize("prediction, reason", [
    ("(" * 200 + "a" + ")" * 200, "nested deeper than 50"),
    ("~" * 500 + "a", "nested deeper than 50"),
    ("a{99999999999999999999}", "exceeds 1000"),
    ("a{5,100000}", "exceeds 1000"),
    ("a" * 5000, "5000 characters exceeds 1000"),
])
def test_regex_caps(prediction, reason):
    started = time.monotonic()
    verdict = regex_equivalence_verdict(prediction, ".*dog.*")
    assert verdict.outcome == "over_limit" and reason in verdict.reason
    assert regex_equivalence_outcome(prediction, ".*dog.*") == "over_limit"
    assert time.monotonic() - started < 2
    assert regex_equivalence_outcome("(((a)))", "a") == "equivalent"  # nesting within the cap still works


def test_deeply_nested_reference_is_an_invalid_reference_not_a_crash():
    with pytest.raises(LimitExceeded):
        regex_to_fsm("(" * 200 + "a" + ")" * 200)
    assert regex_equivalence_outcome("a", "(" * 200 + "a" + ")" * 200) == "invalid_reference"


def test_million_digit_number_is_over_limit():
    huge = "#### " + "9" * 1_000_000
    started = time.monotonic()
    assert gsm8k_verdict(huge, "#### 5") == ("over_limit", f"number of 1000000 digits exceeds {MAX_NUMBER_DIGITS}")
    assert gsm8k_answer_match(huge, "#### 5") is False
    assert time.monotonic() - started < 2
    with pytest.raises(LimitExceeded):
        normalize_number("1" + "0" * 5000 + ".5")
    assert normalize_number("1" * MAX_NUMBER_DIGITS) == "1" * MAX_NUMBER_DIGITS  # at the cap: exact, not rounded
    assert not gsm8k_answer_match("#### " + "1" * 40, "#### " + "1" * 39 + "2")


@pytest.mark.parametrize("query, reason", [
    ("SELECT zeroblob(900000000)", "exceeds 1000000 bytes"),
    ("SELECT replace(hex(zeroblob(400000)), '0', 'xxxxxxxxxx')", "exceeds 1000000 bytes"),
    ("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c", "more than 100000 rows"),
    ("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 3000) SELECT zeroblob(900000) FROM c",
     "exceeds 64 MiB"),
    ("SELECT 1 " + " " * 200_000, "exceeds 100000"),
])
def test_sql_caps(shop_db, query, reason):
    verdict = sql_execution_verdict(query, "SELECT name FROM item", shop_db)
    assert verdict.outcome == "over_limit" and reason in verdict.reason


def test_sql_memory_stays_bounded(shop_db):
    """In a fresh process: the zeroblob query and a sort too large for SQLite's heap cap grow the process by far
    less than the ~1 GB they used to."""
    script = f"""
import resource, sys
sys.path.insert(0, {str(ROOT)!r})
from eval.llm_tasks import sql_execution_verdict
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
outcomes = [sql_execution_verdict(q, "SELECT 1", {shop_db!r}, timeout_s=20).outcome for q in (
    "SELECT zeroblob(900000000)",
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 3000000) "
    "SELECT randomblob(200) FROM c ORDER BY 1",
)]
print(outcomes, (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    outcomes, growth_mb = done.stdout.strip().rsplit(" ", 1)
    assert outcomes == "['over_limit', 'over_limit']"
    assert int(growth_mb) < llm_tasks.MAX_SQL_HEAP_BYTES // 2**20 + 100, done.stdout


def _row(task, prediction_reference, db_path=""):
    return {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": prediction_reference}],
            "id": f"{task}-{len(prediction_reference)}", "task": task, "reference": prediction_reference,
            "db_path": db_path}


def test_an_evaluation_over_hostile_outputs_finishes(shop_db, monkeypatch, caplog):
    rows_predictions = [
        (_row("regex", ".*dog.*"), "(" * 200 + "a" + ")" * 200),
        (_row("regex", ".*dog.*"), ".*(dog).*"),
        (_row("gsm8k", "#### 5"), "#### " + "9" * 1_000_000),
        (_row("gsm8k", "#### 5"), "so #### 5"),
        (_row("sql", "SELECT name FROM item", shop_db), "SELECT zeroblob(900000000)"),
        (_row("sql", "SELECT name FROM item", shop_db), "SELECT name FROM item ORDER BY name"),
    ]
    records = [score_example(row, prediction) for row, prediction in rows_predictions]
    assert [r.get("regex_outcome") or r.get("gsm8k_outcome") or r.get("sql_outcome") for r in records] == [
        "over_limit", "equivalent", "over_limit", "match", "over_limit", "match"]
    assert all("outcome_reason" in r for r in records[::2]) and not any("outcome_reason" in r for r in records[1::2])
    json.dumps(records)  # predictions.jsonl can hold them
    metrics = aggregate_metrics(records)
    assert metrics["regex/over_limit"] == metrics["gsm8k/over_limit"] == metrics["sql/over_limit"] == 1
    assert metrics["regex/semantic_equivalence"] == metrics["gsm8k/answer_match"] == 0.5
    assert metrics["sql/execution_match"] == 0.5

    def broken(*args, **kwargs):  # any other failure while scoring one output: that output scores 0
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr("llm_jepa.evaluate.sql_execution_verdict", broken)
    record = score_example(*rows_predictions[5])
    assert record["execution_match"] == 0.0 and record["scoring_error"].startswith("RecursionError")
    assert "scoring failed" in caplog.text
    assert aggregate_metrics([record])["sql/scoring_errors"] == 1
