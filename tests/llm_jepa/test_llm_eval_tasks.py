"""Task metrics of eval/llm_tasks.py on hand-checked cases."""

from __future__ import annotations

import sqlite3
import time

import pytest

from eval.llm_tasks import (
    RegexSyntaxError,
    exact_match,
    gsm8k_answer_match,
    gsm8k_final_answer,
    normalize_number,
    regex_equivalence_outcome,
    regex_equivalent,
    regex_string_match,
    regex_to_fsm,
    sql_execution_match,
    sql_execution_outcome,
    sql_orders_rows,
)


@pytest.mark.parametrize(
    ("prediction", "reference", "expected"),
    [
        ("SELECT  name\nFROM t ", "SELECT name FROM t", 1.0),
        ("a b", "ab", 0.0),
        ("", "", 1.0),
        ("x", "y", 0.0),
    ],
)
def test_exact_match_normalises_whitespace_only(prediction, reference, expected):
    assert exact_match(prediction, reference) == expected


def test_regex_string_match_keeps_inner_spaces():
    assert regex_string_match("  (dog).*  ", "(dog).*")
    assert not regex_string_match("a b", "ab")


@pytest.mark.parametrize(
    ("prediction", "reference"),
    [
        ("[0-9]+", r"\d\d*"),  # greenery knows \d
        ("(a|b)*", "(b|a)*"),
        (".*(dog).*", ".*dog.*"),
        (".*(dog)+.*", ".*dog.*"),
        ("[a-z]|[A-Z]", "[A-Za-z]"),
        ("a{2,3}", "aa|aaa"),
        ("(?:ab)?", "(ab|)"),
        # NL-RX operators: & (and) and ~ (not), whole-line semantics
        ("~(.*dog.*)", "~(.*(dog).*)"),
        ("(.*[0-9].*)&(.*[a-z].*)", "(.*[0-9].*[a-z].*)|(.*[a-z].*[0-9].*)"),
        ("([AEIOUaeiou])(.*)&(.*[0-9].*)", "([AEIOUaeiou]).*([0-9])(.*)"),
        ("~(.*a.*)", "[^a]*"),
        ("~(a&b)", ".*"),
    ],
)
def test_equivalent_regexes(prediction, reference):
    assert regex_equivalent(prediction, reference)
    assert regex_equivalence_outcome(reference, prediction) == "equivalent"


@pytest.mark.parametrize(
    ("prediction", "reference"),
    [
        ("a", "b"),
        (".*a.*", ".*b.*"),
        ("a*", "a+"),
        ("(.*a.*b.*){5,}", "(.*a.*b.*){4,}"),
        ("[0-9]", "[0-9]{2}"),
    ],
)
def test_different_regexes(prediction, reference):
    assert not regex_equivalent(prediction, reference)
    assert regex_equivalence_outcome(prediction, reference) == "different"


@pytest.mark.parametrize(
    ("prediction", "reference", "outcome"),
    [
        ("((", "a", "invalid_prediction"),
        ("a{3,1}", "a", "invalid_prediction"),
        ("a^b", "a", "invalid_prediction"),  # an anchor inside the line has no whole-line automaton
        ("(a$)b", "a", "invalid_prediction"),
        ("(^a)*", "a", "invalid_prediction"),
        ("[a-", "a", "invalid_prediction"),
        ("a", r"\bdog\b", "invalid_reference"),  # word boundaries have no whole-line automaton
        (r"\bdog\b", r"\bdog\b", "equivalent"),  # ... but the same string is still a match
    ],
)
def test_invalid_regexes_are_reported_not_scored(prediction, reference, outcome):
    assert regex_equivalence_outcome(prediction, reference) == outcome
    assert regex_equivalent(prediction, reference) == (outcome == "equivalent")


@pytest.mark.parametrize(
    ("prediction", "reference"),
    [
        ("^abc$", "abc"),  # whole-line matching: a leading ^ and a final $ are no-ops
        ("^a$", "a"),
        ("^[0-9]+", "[0-9]+$"),
        ("(^a|^b)c$", "[ab]c"),
        ("^a(b$|c$)", "a[bc]"),
        ("^^a$$", "a"),
    ],
)
def test_line_anchors_are_no_ops(prediction, reference):
    assert regex_equivalence_outcome(prediction, reference) == "equivalent"
    assert regex_equivalence_outcome(prediction, reference, dialect="standard") == "equivalent"


def test_standard_dialect_treats_nlrx_operators_as_characters():
    assert regex_to_fsm("a&b", dialect="standard").accepts("a&b")
    assert not regex_to_fsm("a&b", dialect="nl-rx").accepts("a&b")
    assert regex_equivalence_outcome("~a", "[~]a", dialect="standard") == "equivalent"
    with pytest.raises(RegexSyntaxError, match="position"):
        regex_to_fsm("(a", dialect="standard")


def test_regex_timeout_guard_stops_pathological_pairs():
    start = time.monotonic()
    outcome = regex_equivalence_outcome(
        "(.*[0-9].*[a-z].*.*){7,}", "~(.*(dog).*)&(.*[A-Z].*){6,}", timeout_s=0.3
    )
    assert outcome == "timeout"
    assert time.monotonic() - start < 3.0


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("She pays 3 * $400 = $1,200.\n#### $1,200", "1200"),
        ("#### 1,234,567", "1234567"),
        ("x\n#### $5.00.", "5"),
        ("#### 18 dollars", "18"),
        ("#### -0.50", "-0.5"),
        ("#### 0", "0"),
        ("steps\n#### 3\nmore\n#### 4", "4"),  # the last marker wins
        ("The answer is \\boxed{1,000}.", "1000"),
        ("#### 6/3", "2"),
        ("The answer is 42.", None),  # unmarked numbers are not guessed
        ("#### none", None),
        ("#### 3 + 4 = 7", "7"),  # the result after the last '=', not the first operand
        ("so\n#### 12 / 4 = 3 apples", "3"),
        ("#### $2 * 3 = $6.00\nThanks", "6"),
    ],
)
def test_gsm8k_final_answer(text, answer):
    assert gsm8k_final_answer(text) == answer


def test_normalize_number_keeps_non_thousands_commas_apart():
    assert normalize_number("1,2") == "1"
    assert normalize_number("$ 12,500.0") == "12500"


@pytest.mark.parametrize(
    ("prediction", "reference", "expected"),
    [
        ("... so $1,200 in total.\n#### 1200", "1200", True),
        ("#### 1,200.00", "#### $1200", True),
        ("#### 1201", "1200", False),
        ("I think 1200", "1200", False),
        ("#### 3 + 4 = 7", "7", True),
        ("#### 3 + 4 = 7", "3", False),
    ],
)
def test_gsm8k_answer_match(prediction, reference, expected):
    assert gsm8k_answer_match(prediction, reference) is expected


@pytest.fixture()
def tiny_db(tmp_path):
    path = tmp_path / "shop.sqlite"
    with sqlite3.connect(path) as connection:
        connection.executescript(
            "CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT, price REAL);"
            "INSERT INTO item VALUES (1, 'pen', 1.5), (2, 'book', 12.0), (3, 'pen', 2.0);"
        )
    connection.close()
    return path


@pytest.mark.parametrize(
    ("prediction", "outcome"),
    [
        ("SELECT name FROM item", "match"),
        ("select name from item order by id desc", "match"),  # multisets: order ignored
        ("SELECT DISTINCT name FROM item", "mismatch"),  # multiplicity counts
        ("SELECT name FROM item WHERE price > 1.9", "mismatch"),
        ("SELECT nme FROM item", "prediction_error"),
        ("DELETE FROM item", "prediction_error"),  # read-only
        ("ATTACH DATABASE 'x.db' AS x", "prediction_error"),
        ("SELECT 1; SELECT 2", "prediction_error"),
    ],
)
def test_sql_execution(tiny_db, prediction, outcome):
    assert sql_execution_outcome(prediction, "SELECT name FROM item", tiny_db) == outcome
    assert sql_execution_match(prediction, "SELECT name FROM item", tiny_db) is (outcome == "match")
    assert sqlite3.connect(tiny_db).execute("SELECT COUNT(*) FROM item").fetchone() == (3,)


@pytest.mark.parametrize(
    ("prediction", "reference", "outcome"),
    [
        # the gold query orders its rows: order is part of the answer
        ("SELECT name FROM item ORDER BY price", "SELECT name FROM item ORDER BY price", "match"),
        ("SELECT name FROM item ORDER BY price DESC", "SELECT name FROM item ORDER BY price", "mismatch"),
        ("SELECT name FROM item ORDER BY price DESC", "select name from item order\n by price", "mismatch"),
        ("SELECT name FROM item", "SELECT name FROM item ORDER BY id", "match"),  # same order by chance
        # no ORDER BY on the outermost statement: row order is free
        ("SELECT name FROM item ORDER BY price DESC", "SELECT name FROM item", "match"),
        (
            "SELECT name FROM item ORDER BY price DESC",
            "SELECT name FROM (SELECT * FROM item ORDER BY price)",
            "match",
        ),
        ("SELECT name FROM item ORDER BY price DESC", "SELECT name FROM item WHERE name != 'order by'", "match"),
        ("SELECT name FROM item ORDER BY price DESC", "SELECT name FROM item -- ORDER BY price", "match"),
    ],
)
def test_sql_order_counts_only_when_the_gold_query_orders(tiny_db, prediction, reference, outcome):
    assert sql_execution_outcome(prediction, reference, tiny_db) == outcome


def test_sql_orders_rows_looks_at_the_outermost_statement_only():
    assert sql_orders_rows("SELECT a FROM t ORDER BY a")
    assert sql_orders_rows("SELECT a FROM t UNION SELECT b FROM u ORDER BY 1")
    assert not sql_orders_rows("SELECT a, rank() OVER (ORDER BY a) FROM t")
    assert not sql_orders_rows('SELECT "order by" FROM t')
    assert not sql_orders_rows("SELECT a FROM t /* ORDER BY a */")


def test_sql_reference_errors_and_missing_database(tiny_db, tmp_path):
    assert sql_execution_outcome("SELECT 1", "SELECT nope FROM item", tiny_db) == "reference_error"
    assert sql_execution_outcome("SELECT 1", "SELECT 1", tmp_path / "missing.sqlite") == "reference_error"
    assert not (tmp_path / "missing.sqlite").exists()


def test_sql_time_limit(tiny_db):
    slow = (
        "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n) SELECT COUNT(*) FROM n WHERE x < 0"
    )
    start = time.monotonic()
    assert sql_execution_outcome(slow, "SELECT 1", tiny_db, timeout_s=0.3) == "timeout"
    assert time.monotonic() - start < 3.0
