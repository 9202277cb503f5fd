"""Task metrics for LLM fine-tuning evaluation: pure functions, strings in, verdicts out.

* :func:`exact_match` - whitespace-normalised string equality (every task).
* :func:`regex_string_match` / :func:`regex_equivalent` - NL-to-regex: the same string, or the same language
  (two regexes accepting exactly the same lines, decided on finite automata built with ``greenery``).
* :func:`gsm8k_final_answer` / :func:`gsm8k_answer_match` - GSM8K: the number after ``####``.
* :func:`sql_execution_match` - text-to-SQL: both queries run on the SQLite database (read-only, time and
  size limited) and their results compared: in order when the gold query's outermost statement has
  ``ORDER BY``, as multisets otherwise (:mod:`eval.sql_execution`, re-exported here).

Functions that can fail on bad input also come as a ``*_outcome`` variant returning a status string, so that
runners can count invalid predictions, errors and timeouts instead of hiding them in a zero.

Model outputs are untrusted, so scoring has caps (:mod:`eval.limits`): a regex too long, too deeply nested or
repeating too often; a number with too many digits; an SQL value, result or memory use too large. An output over
a cap scores as wrong with the outcome ``"over_limit"`` (the ``*_verdict`` functions also give the reason).

>>> regex_equivalent("[0-9]+", "[0-9][0-9]*")
True
>>> gsm8k_final_answer("She pays 3 * $400 = $1,200.\\n#### $1,200")
'1200'
"""

from __future__ import annotations

import re
from decimal import Context, Decimal, InvalidOperation
from fractions import Fraction
from typing import Literal

from eval.limits import (
    MAX_NUMBER_DIGITS,
    LimitExceeded,
    Verdict,
)
from eval.regex_equivalence import (  # noqa: F401  (re-exported: regex scoring lives in its own module)
    RegexDialect,
    RegexOutcome,
    RegexSyntaxError,
    RegexTimeout,
    RegexTooComplex,
    regex_equivalence_outcome,
    regex_equivalence_verdict,
    regex_equivalent,
    regex_string_match,
    regex_to_fsm,
    time_limit,
)
from eval.sql_execution import (  # noqa: F401  (re-exported: text-to-SQL scoring lives in its own module)
    MAX_SQL_HEAP_BYTES,
    SqlOutcome,
    run_sql_readonly,
    sql_execution_match,
    sql_execution_outcome,
    sql_execution_verdict,
    sql_orders_rows,
)

GsmOutcome = Literal["match", "mismatch", "no_answer", "over_limit"]

# ---------------------------------------------------------------------------------------------- strings


def normalize_whitespace(text: str) -> str:
    """Collapse runs of whitespace to one space and strip the ends."""
    return " ".join(text.split())


def exact_match(prediction: str, reference: str) -> float:
    """1.0 when the two strings are equal after whitespace normalisation, else 0.0."""
    return float(normalize_whitespace(prediction) == normalize_whitespace(reference))


# ---------------------------------------------------------------------------------------------- GSM8K

_FINAL_MARKER = re.compile(r"####\s*([^\n]*)")
_BOXED = re.compile(r"\\boxed\{([^{}]*)\}")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:/\d+)?|-?\.\d+")


def normalize_number(text: str) -> str | None:
    """The first number in ``text`` in canonical form ('$1,200.00' -> '1200', '-0.50' -> '-0.5'), or None.

    A number of more than :data:`MAX_NUMBER_DIGITS` digits raises :class:`LimitExceeded`.
    """
    cleaned = re.sub(r"(?<=\d),(?=\d{3}(?:\D|$))", "", text.replace("$", "").replace("\u2212", "-"))
    match = _NUMBER.search(cleaned)
    if not match:
        return None
    token = match.group(0)
    digits = sum(char.isdigit() for char in token)
    if digits > MAX_NUMBER_DIGITS:
        raise LimitExceeded(f"number of {digits} digits exceeds {MAX_NUMBER_DIGITS}")
    if "/" in token:
        numerator, denominator = token.split("/")
        if int(denominator) == 0:
            return None
        value = Fraction(int(numerator), int(denominator))
        return str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"
    try:
        number = Decimal(token)
    except InvalidOperation:
        return None
    # enough precision for every allowed digit (the default 28 would round long answers into equal ones)
    canonical = format(number.normalize(Context(prec=MAX_NUMBER_DIGITS + 2)), "f")
    return "0" if canonical in ("-0", "0") else canonical


def gsm8k_final_answer(text: str) -> str | None:
    """The final answer of a GSM8K-style solution, normalised by :func:`normalize_number`; None when there is
    no marked answer.

    Rule: take the rest of the line after the last ``####`` (else the last ``\\boxed{...}``); when it holds
    an ``=``, keep only what follows the last ``=`` (``#### 3 + 4 = 7`` -> ``7``: the result, not the first
    operand); the answer is the first number of what is left (``#### $1,200 total`` -> ``1200``).

    Unmarked text is not searched for a trailing number: a model that does not state its answer the
    trained way scores no answer rather than a lucky guess.
    """
    for pattern in (_FINAL_MARKER, _BOXED):
        found = pattern.findall(text)
        if found:
            return normalize_number(found[-1].rsplit("=", 1)[-1])
    return None


def gsm8k_verdict(prediction: str, reference: str) -> Verdict:
    """``match`` / ``mismatch`` / ``no_answer`` / ``over_limit`` (with the reason) for one GSM8K prediction."""
    expected = gsm8k_final_answer(reference) if ("####" in reference or "\\boxed" in reference) else None
    if expected is None:
        expected = normalize_number(reference)
    try:
        predicted = gsm8k_final_answer(prediction)
    except LimitExceeded as err:
        return Verdict("over_limit", str(err))
    if predicted is None:
        return Verdict("no_answer")
    return Verdict("match" if predicted == expected else "mismatch")


def gsm8k_answer_match(prediction: str, reference: str) -> bool:
    """The prediction's final answer equals the reference's (a full solution or the bare final answer)."""
    return gsm8k_verdict(prediction, reference).outcome == "match"
