"""NL-to-regex scoring: the same string, or the same language (two regexes accepting exactly the same lines),
decided on finite automata built with ``greenery``. Pure functions, strings in, verdicts out; re-exported by
:mod:`eval.llm_tasks`.

Model outputs are untrusted: a regex too long, too deeply nested or repeating too often (:mod:`eval.limits`)
scores ``"over_limit"``, and automaton work runs under a time limit.

>>> regex_equivalent("[0-9]+", "[0-9][0-9]*")
True
"""

from __future__ import annotations

import contextlib
import re
import signal
import threading
from collections.abc import Iterator
from typing import Literal

from eval.limits import MAX_REGEX_CHARS, MAX_REGEX_NESTING, MAX_REGEX_REPEAT, LimitExceeded, Verdict

RegexDialect = Literal["nl-rx", "standard"]
RegexOutcome = Literal["equivalent", "different", "invalid_prediction", "invalid_reference", "timeout", "over_limit"]


def regex_string_match(prediction: str, reference: str) -> bool:
    """The same regex string, ignoring only the ends' whitespace (inner spaces are literal characters)."""
    return prediction.strip() == reference.strip()


# ---------------------------------------------------------------------------------------------- regexes


class RegexSyntaxError(ValueError):
    """A regex that the evaluator cannot turn into a finite automaton (names the position and why)."""


class RegexTimeout(TimeoutError):
    """Building or comparing the automata took longer than the time limit."""


class RegexTooComplex(RegexSyntaxError, LimitExceeded):
    """A regex beyond the caps (:data:`MAX_REGEX_CHARS`, :data:`MAX_REGEX_NESTING`, :data:`MAX_REGEX_REPEAT`)."""


_SPECIAL = set("\\[]|().?*+{}")
_NLRX_OPERATORS = set("&~")


class _RegexParser:
    """Recursive descent over one regex, building a ``greenery.Fsm`` (full-line match semantics).

    Grammar, loosest first (the NL-RX / dk.brics operator precedence)::

        union  := inter ('|' inter)*
        inter  := concat ('&' concat)*          # nl-rx dialect only
        concat := repeat*
        repeat := complement ('*' | '+' | '?' | '{n}' | '{n,}' | '{n,m}')*   (a trailing lazy '?' is ignored)
        complement := '~' complement | atom     # nl-rx dialect only
        atom   := '(' union ')' | '(?:' union ')' | '[...]' | '.' | '\\x' | literal character

    Character classes and escapes are handed to ``greenery.parse``. Regexes match whole lines, so an anchor
    where it can only match the line's start (``^`` before anything is consumed: ``^abc``, ``(^a|^b)c``) or end
    (``$`` after everything: ``abc$``, ``a(b$|c$)``) is a no-op and accepted; an anchor anywhere else
    (``a^b``, ``(a$)b``, ``(^a)*``) and word boundaries (``\\b``) have no whole-line automaton and are
    rejected as unsupported.
    """

    def __init__(self, text: str, dialect: RegexDialect) -> None:
        if dialect not in ("nl-rx", "standard"):
            raise ValueError(f"unknown regex dialect {dialect!r}; choose 'nl-rx' or 'standard'")
        self.text, self.pos, self.dialect, self.depth = text, 0, dialect, 0
        self.special = _SPECIAL | (_NLRX_OPERATORS if dialect == "nl-rx" else set())
        self.anchors = 0  # anchors consumed so far (a repeated part must hold none)

    def enter(self) -> None:
        """One level deeper (a group or a complement); past :data:`MAX_REGEX_NESTING` it is :class:`LimitExceeded`."""
        self.depth += 1
        if self.depth > MAX_REGEX_NESTING:
            raise RegexTooComplex(f"regex nested deeper than {MAX_REGEX_NESTING} levels at position {self.pos}")

    def fail(self, reason: str) -> RegexSyntaxError:
        return RegexSyntaxError(f"{reason} at position {self.pos} of {self.text!r}")

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def parse(self):
        fsm, _ = self.union(at_start=True)
        if self.pos != len(self.text):
            raise self.fail(f"unexpected {self.peek()!r}")
        return fsm

    # Each level returns (fsm, ends): ``ends`` when a '$' closed it, so nothing may follow it.

    def union(self, at_start: bool):
        fsm, ends = self.intersection(at_start)
        while self.peek() == "|":
            self.pos += 1
            other, other_ends = self.intersection(at_start)
            fsm, ends = fsm.union(other), ends or other_ends
        return fsm, ends

    def intersection(self, at_start: bool):
        fsm, ends = self.concatenation(at_start)
        while self.dialect == "nl-rx" and self.peek() == "&":
            self.pos += 1
            other, other_ends = self.concatenation(at_start)
            fsm, ends = fsm.intersection(other), ends or other_ends
        return fsm, ends

    def concatenation(self, at_start: bool):
        from greenery import EPSILON

        parts, ends = [], False
        while self.peek() not in ("", ")", "|") and not (self.dialect == "nl-rx" and self.peek() == "&"):
            char = self.peek()
            if ends and char != "$":
                raise self.fail("'$' is followed by more of the regex (only a final '$' is supported)")
            if char in ("^", "$"):
                if char == "^" and not (at_start and not parts):
                    raise self.fail("'^' after the start of the line (only a leading '^' is supported)")
                self.pos += 1
                self.anchors += 1
                ends = ends or char == "$"
                continue
            fsm, ends = self.repeat(at_start and not parts)
            parts.append(fsm)
        return (EPSILON.concatenate(*parts) if parts else EPSILON), ends

    def repeat(self, at_start: bool):
        from greenery import EPSILON

        anchors_before = self.anchors
        fsm, ends = self.complement(at_start)
        while True:
            char = self.peek()
            if char in ("*", "+", "?"):
                self.pos += 1
                low, high = {"*": (0, None), "+": (1, None), "?": (0, 1)}[char]
            elif char == "{":
                low, high = self.bounds()
            else:
                return fsm, ends
            if self.anchors != anchors_before:
                raise self.fail("an anchor inside a repeated part is not supported")
            if self.peek() == "?":  # lazy quantifier: same language
                self.pos += 1
            optional = fsm.star() if high is None else EPSILON.union(fsm).times(high - low)
            fsm = fsm.times(low).concatenate(optional)

    def bounds(self) -> tuple[int, int | None]:
        match = re.compile(r"\{(\d+)(,(\d*))?\}").match(self.text, self.pos)
        if not match:
            raise self.fail("malformed {n,m} repetition")
        self.pos = match.end()
        if max(len(match.group(1)), len(match.group(3) or "")) > len(str(MAX_REGEX_REPEAT)) or max(
            int(match.group(1)), int(match.group(3) or 0)
        ) > MAX_REGEX_REPEAT:
            raise RegexTooComplex(f"repetition {match.group(0)[:40]!r} exceeds {MAX_REGEX_REPEAT}")
        low = int(match.group(1))
        if match.group(2) is None:
            return low, low
        high = int(match.group(3)) if match.group(3) else None
        if high is not None and high < low:
            raise self.fail(f"repetition {{{low},{high}}} has max < min")
        return low, high

    def complement(self, at_start: bool):
        if self.dialect == "nl-rx" and self.peek() == "~":
            self.pos += 1
            self.enter()
            fsm, ends = self.complement(at_start)
            self.depth -= 1
            return fsm.everythingbut(), ends
        return self.atom(at_start)

    def atom(self, at_start: bool):
        from greenery import parse

        char = self.peek()
        if char == "(":
            self.pos += 3 if self.text.startswith("(?:", self.pos) else 1
            self.enter()
            fsm, ends = self.union(at_start)
            if self.peek() != ")":
                raise self.fail("unclosed group")
            self.pos += 1
            self.depth -= 1
            return fsm, ends
        if char == "[":
            end = self.class_end()
            token = self.text[self.pos : end]
        elif char == "\\":
            token = self.text[self.pos : self.pos + (4 if self.text.startswith("\\x", self.pos) else 2)]
            if token in ("\\b", "\\B", "\\A", "\\Z"):
                raise self.fail(f"{token} (a boundary assertion) has no whole-line automaton")
        elif char == ".":
            token = char
        elif char in self.special or char == "":
            raise self.fail(f"unexpected {char!r}" if char else "unexpected end")
        else:
            token = char
        try:
            fsm = parse(token).to_fsm()
        except Exception as err:  # greenery raises its own NoMatch / ValueError family
            raise self.fail(f"cannot parse {token!r} ({err})") from err
        self.pos += len(token)
        return fsm, False

    def class_end(self) -> int:
        index = self.pos + 1
        if self.text.startswith("^", index):
            index += 1
        if self.text.startswith("]", index):  # a leading ']' is a literal
            index += 1
        while index < len(self.text):
            if self.text[index] == "\\":
                index += 2
                continue
            if self.text[index] == "]":
                return index + 1
            index += 1
        raise self.fail("unclosed character class")


def regex_to_fsm(regex: str, *, dialect: RegexDialect = "nl-rx"):
    """A ``greenery.Fsm`` accepting the lines the regex matches in full; or :class:`RegexSyntaxError`.

    ``dialect="nl-rx"`` adds the NL-RX operators ``A&B`` (both) and ``~A`` (not A); in ``"standard"`` they are
    ordinary characters. A regex beyond the caps raises :class:`RegexTooComplex` (a :class:`RegexSyntaxError`).
    """
    from jepa_core.extras import require

    require("greenery", extra="eval", purpose="regex equivalence (eval.regex_equivalence)")  # before the broad except
    regex = regex.strip()
    if len(regex) > MAX_REGEX_CHARS:
        raise RegexTooComplex(f"regex of {len(regex)} characters exceeds {MAX_REGEX_CHARS}")
    try:
        return _RegexParser(regex, dialect).parse()
    except RecursionError as err:  # a deep structure inside greenery itself
        raise RegexTooComplex("regex too deeply structured to build an automaton") from err


@contextlib.contextmanager
def time_limit(seconds: float | None) -> Iterator[None]:
    """Raise :class:`RegexTimeout` inside the block after ``seconds`` (SIGALRM; main thread on Unix only)."""
    if seconds is None:
        yield
        return
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        raise RuntimeError(
            "the regex time limit uses SIGALRM, which works only in the main thread on Unix; "
            "call from the main thread or pass timeout_s=None"
        )

    def on_alarm(signum, frame):
        raise RegexTimeout(f"regex automaton work exceeded {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def regex_equivalence_verdict(
    prediction: str, reference: str, *, dialect: RegexDialect = "nl-rx", timeout_s: float | None = 5.0
) -> Verdict:
    """Compare the languages of two regexes: the outcome, and why for ``over_limit`` and invalid regexes."""
    if regex_string_match(prediction, reference):
        return Verdict("equivalent")
    try:
        with time_limit(timeout_s):
            try:
                reference_fsm = regex_to_fsm(reference, dialect=dialect)
            except RegexSyntaxError as err:
                return Verdict("invalid_reference", str(err)[:300])
            try:
                prediction_fsm = regex_to_fsm(prediction, dialect=dialect)
            except RegexTooComplex as err:
                return Verdict("over_limit", str(err)[:300])
            except RegexSyntaxError as err:
                return Verdict("invalid_prediction", str(err)[:300])
            try:
                same = prediction_fsm.equivalent(reference_fsm)
            except (RecursionError, MemoryError) as err:
                return Verdict("over_limit", f"automaton comparison: {type(err).__name__}")
            return Verdict("equivalent" if same else "different")
    except RegexTimeout as err:
        return Verdict("timeout", str(err))


def regex_equivalence_outcome(
    prediction: str, reference: str, *, dialect: RegexDialect = "nl-rx", timeout_s: float | None = 5.0
) -> RegexOutcome:
    """Compare the languages of two regexes; a status instead of a bool so callers can count failures."""
    return regex_equivalence_verdict(prediction, reference, dialect=dialect, timeout_s=timeout_s).outcome


def regex_equivalent(
    prediction: str, reference: str, *, dialect: RegexDialect = "nl-rx", timeout_s: float | None = 5.0
) -> bool:
    """True when both regexes accept the same set of lines; invalid regexes and timeouts give False."""
    return (
        regex_equivalence_outcome(prediction, reference, dialect=dialect, timeout_s=timeout_s) == "equivalent"
    )
