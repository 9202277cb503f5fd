"""Caps on what scoring an untrusted model output may cost, and the verdict type that reports hitting one.

A model can emit anything: 200 nested parentheses, a million-digit number, a query that allocates a gigabyte.
Scoring functions (:mod:`eval.llm_tasks`, :mod:`eval.sql_execution`) check these caps and report an output beyond
one as ``Verdict("over_limit", reason)``: it scores as wrong, the reason is recorded with the prediction, and
the evaluation goes on.

>>> Verdict("over_limit", "number of 1000000 digits exceeds 100").outcome
'over_limit'
"""

from __future__ import annotations

from typing import NamedTuple

MAX_REGEX_CHARS = 1_000  # NL-RX / KB13 regexes are under 200 characters
MAX_REGEX_NESTING = 50  # groups and complements inside each other (the parser recurses per level)
MAX_REGEX_REPEAT = 1_000  # the n, m of {n,m}: each unrolls into n copies of an automaton
MAX_NUMBER_DIGITS = 100  # GSM8K answers have at most a few dozen digits
MAX_SQL_CHARS = 100_000  # SQLITE_LIMIT_SQL_LENGTH of a query
MAX_SQL_VALUE_BYTES = 1_000_000  # SQLITE_LIMIT_LENGTH: any one string or blob (zeroblob(1e9) fails at once)
MAX_SQL_ROWS = 100_000  # rows read back from one query
MAX_SQL_RESULT_BYTES = 64 * 2**20  # approximate Python size of those rows
# SQLite's hard heap limit is process-wide and can only be lowered; it bounds what sorting and temporary tables
# of a hostile query can take (temp_store=MEMORY keeps them in that heap and off the disk).
MAX_SQL_HEAP_BYTES = 256 * 2**20


class LimitExceeded(ValueError):
    """An input beyond a scoring cap (too long, too deep, too large); it scores as wrong, never crashes."""


class Verdict(NamedTuple):
    """An outcome and, for the ``over_limit`` / error outcomes, the reason (recorded with the prediction)."""

    outcome: str
    reason: str | None = None
