"""Text-to-SQL scoring: run a predicted and a gold query read-only on the SQLite database, compare the results.

The predicted query is untrusted: the database is opened read-only, ``ATTACH`` and ``PRAGMA`` are denied, a
progress handler enforces the time limit, and the caps of :mod:`eval.limits` bound its size (query length, any
one value via ``SQLITE_LIMIT_LENGTH``, rows and bytes read back, SQLite's heap via ``PRAGMA hard_heap_limit``).

>>> sql_execution_outcome("SELECT 1", "SELECT 1", "shop.sqlite")  # doctest: +SKIP
'match'
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
import time
from collections import Counter
from pathlib import Path
from typing import Literal

from eval.limits import (
    MAX_SQL_CHARS,
    MAX_SQL_HEAP_BYTES,
    MAX_SQL_RESULT_BYTES,
    MAX_SQL_ROWS,
    MAX_SQL_VALUE_BYTES,
    LimitExceeded,
    Verdict,
)

SqlOutcome = Literal["match", "mismatch", "prediction_error", "reference_error", "timeout", "over_limit"]

def _deny_attach(action: int, *args: object) -> int:
    # Predictions are untrusted: no ATTACH (it could create files) and no PRAGMA writes.
    if action in (sqlite3.SQLITE_ATTACH, sqlite3.SQLITE_DETACH, sqlite3.SQLITE_PRAGMA):
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK


def _cap_sqlite_heap() -> None:
    """Lower SQLite's process-wide hard heap limit to :data:`MAX_SQL_HEAP_BYTES` (never raise an existing one)."""
    with contextlib.closing(sqlite3.connect(":memory:")) as connection:
        current = connection.execute("PRAGMA hard_heap_limit").fetchone()[0]
        if current == 0 or current > MAX_SQL_HEAP_BYTES:
            connection.execute(f"PRAGMA hard_heap_limit = {MAX_SQL_HEAP_BYTES}")


def _row_bytes(row: tuple) -> int:
    return 64 + sum(len(value) if isinstance(value, (str, bytes)) else 16 for value in row)


def run_sql_readonly(sql: str, db_path: str | Path, *, timeout_s: float = 5.0) -> list[tuple]:
    """All rows of ``sql`` on the SQLite file, opened read-only.

    Raises ``sqlite3.Error`` (bad query), ``TimeoutError`` (over ``timeout_s``) or :class:`LimitExceeded` (a value,
    the result or SQLite's memory beyond the caps at the top of this module).
    """
    path = Path(db_path)
    if not path.is_file():
        raise sqlite3.OperationalError(f"database file not found: {path}")
    if len(sql) > MAX_SQL_CHARS:
        raise LimitExceeded(f"query of {len(sql)} characters exceeds {MAX_SQL_CHARS}")
    _cap_sqlite_heap()
    connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=timeout_s)
    deadline = time.monotonic() + timeout_s
    try:
        connection.text_factory = lambda raw: raw.decode("utf-8", errors="replace")
        connection.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, MAX_SQL_VALUE_BYTES)
        connection.setlimit(sqlite3.SQLITE_LIMIT_SQL_LENGTH, MAX_SQL_CHARS)
        connection.execute("PRAGMA temp_store = MEMORY")  # sorts and temporary tables: in the capped heap
        connection.set_authorizer(_deny_attach)
        connection.set_progress_handler(lambda: int(time.monotonic() > deadline), 1000)
        try:
            cursor = connection.execute(sql)
            rows: list[tuple] = []
            size = 0
            for row in cursor:  # one row at a time: the caps hold before a large batch is in memory
                rows.append(row)
                size += _row_bytes(row)
                if len(rows) > MAX_SQL_ROWS:
                    raise LimitExceeded(f"query returned more than {MAX_SQL_ROWS} rows")
                if size > MAX_SQL_RESULT_BYTES:
                    raise LimitExceeded(f"query result exceeds {MAX_SQL_RESULT_BYTES // 2**20} MiB")
            return rows
        except MemoryError as err:  # SQLITE_NOMEM: the hard heap limit
            raise LimitExceeded(f"query needs more than {MAX_SQL_HEAP_BYTES // 2**20} MiB of SQLite memory") from err
        except sqlite3.DataError as err:
            raise LimitExceeded(f"a value exceeds {MAX_SQL_VALUE_BYTES} bytes ({err})") from err
        except sqlite3.OperationalError as err:
            if time.monotonic() > deadline:
                raise TimeoutError(f"query exceeded {timeout_s:g} s") from err
            if "too big" in str(err) or "out of memory" in str(err):
                raise LimitExceeded(f"query exceeds a size cap ({err})") from err
            raise
    finally:
        connection.close()


# string literals, quoted identifiers and comments: blanked out before looking for ORDER BY
_SQL_SKIPPED = re.compile(
    r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|`[^`]*`|\[[^\]]*\]|--[^\n]*|/\*.*?(?:\*/|$)", re.DOTALL
)
_ORDER_BY = re.compile(r"\border\s+by\b", re.IGNORECASE)


def sql_orders_rows(sql: str) -> bool:
    """True when the query's outermost statement has ``ORDER BY`` (so its row order is part of the answer).

    String literals, quoted identifiers and comments are blanked out, and only text outside every
    parenthesis counts: ``ORDER BY`` in a subquery or a window (``OVER (ORDER BY ...)``) does not order the
    result.
    """
    text = _SQL_SKIPPED.sub(" ", sql)
    depth, outer = 0, []
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth = max(0, depth - 1)
        elif depth == 0:
            outer.append(char)
    return bool(_ORDER_BY.search("".join(outer)))


def sql_execution_verdict(
    prediction: str, reference: str, db_path: str | Path, *, timeout_s: float = 5.0
) -> Verdict:
    """Run both queries read-only and compare their results: as ordered lists of rows when the gold query's
    outermost statement has ``ORDER BY`` (:func:`sql_orders_rows`), else as multisets (order ignored); the outcome
    and, for errors, timeouts and ``over_limit``, the reason."""
    try:
        expected = run_sql_readonly(reference, db_path, timeout_s=timeout_s)
    except TimeoutError as err:
        return Verdict("timeout", f"reference: {err}")
    except (sqlite3.Error, ValueError, MemoryError) as err:  # LimitExceeded is a ValueError
        return Verdict("reference_error", f"{type(err).__name__}: {err}"[:300])
    try:
        predicted = run_sql_readonly(prediction, db_path, timeout_s=timeout_s)
    except TimeoutError as err:
        return Verdict("timeout", str(err))
    except LimitExceeded as err:
        return Verdict("over_limit", str(err)[:300])
    except (sqlite3.Error, ValueError, OverflowError, MemoryError) as err:
        return Verdict("prediction_error", f"{type(err).__name__}: {err}"[:300])
    if sql_orders_rows(reference):
        return Verdict("match" if predicted == expected else "mismatch")
    return Verdict("match" if Counter(predicted) == Counter(expected) else "mismatch")


def sql_execution_outcome(
    prediction: str, reference: str, db_path: str | Path, *, timeout_s: float = 5.0
) -> SqlOutcome:
    """:func:`sql_execution_verdict`'s outcome (rows compared in order only when the gold query orders them)."""
    return sql_execution_verdict(prediction, reference, db_path, timeout_s=timeout_s).outcome


def sql_execution_match(
    prediction: str, reference: str, db_path: str | Path, *, timeout_s: float = 5.0
) -> bool:
    """True when both queries return the same rows (in the same order if the gold query orders them); errors
    and timeouts give False."""
    return sql_execution_outcome(prediction, reference, db_path, timeout_s=timeout_s) == "match"
