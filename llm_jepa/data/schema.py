"""The one schema every LLM-JEPA data source is turned into, and the bad-row policy that guards it.

A row is ``{"messages": [system?, user, assistant], "id", "task", "reference", "db_path", "regex_dialect"}``:
the user turn is the Text view, the assistant turn the Code view, ``reference`` the gold answer the metrics
compare against (the regex, the GSM8K final answer, the SQL query), ``db_path`` the SQLite file of SQL rows
("" otherwise) and ``regex_dialect`` the regex syntax a regex row's source declares (``standard``, or
``nl-rx`` with its ``&`` / ``~`` operators; "" for other tasks), which the equivalence metric parses with.

Rows that break the schema are never dropped silently: each becomes a :class:`BadRow` naming its file, line
and reason. With ``on_bad_row="error"`` (the default) loading stops with all of them listed; with ``"skip"``
they are left out and reported in a :class:`BadRowReport` (logged, and written with ``report.write(path)``).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from jepa_core.rundir import write_json

logger = logging.getLogger(__name__)

TaskName = Literal["regex", "gsm8k", "sql", "generic"]
RegexDialectName = Literal["standard", "nl-rx"]
REGEX_DIALECTS: tuple[str, ...] = RegexDialectName.__args__
BadRowPolicy = Literal["error", "skip"]
TASKS: tuple[str, ...] = TaskName.__args__
ROLES = ("system", "user", "assistant")
REPORT_PREVIEW_ROWS = 10

DEFAULT_SYSTEM_PROMPTS: dict[str, str] = {
    "regex": "Write a regular expression matching exactly the lines described. Reply with the regex only.",
    "gsm8k": "Solve the math word problem step by step, then give the final answer after '####'.",
    "sql": "Write one SQLite query answering the question on the given database. Reply with the query only.",
    "generic": "",
}


def system_prompt_for(task: str, system_prompt: str | None) -> str:
    """The system turn to use: the caller's text, the task default when None, no system turn when ''."""
    return DEFAULT_SYSTEM_PROMPTS[task] if system_prompt is None else system_prompt


def build_messages(system_prompt: str, text: str, code: str) -> list[dict[str, str]]:
    """``[system?, user=Text view, assistant=Code view]``; an empty system prompt means no system turn."""
    turns = [{"role": "system", "content": system_prompt}] if system_prompt else []
    return turns + [{"role": "user", "content": text}, {"role": "assistant", "content": code}]


@dataclass(frozen=True)
class RowOrigin:
    """Where a row came from: a file (or generator name) and a 1-based line or record number."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass
class Example:
    """One candidate row as an adapter produced it, before validation."""

    id: str
    messages: Any
    task: TaskName
    reference: str
    origin: RowOrigin
    db_path: str = ""
    regex_dialect: str = ""

    def as_row(self) -> dict[str, Any]:
        return {
            "messages": self.messages,
            "id": self.id,
            "task": self.task,
            "reference": self.reference,
            "db_path": self.db_path,
            "regex_dialect": self.regex_dialect or ("standard" if self.task == "regex" else ""),
        }


@dataclass(frozen=True)
class BadRow:
    """A row that cannot be used, and why."""

    origin: RowOrigin
    reason: str
    row_id: str | None = None

    def __str__(self) -> str:
        name = f" (id {self.row_id})" if self.row_id else ""
        return f"{self.origin}{name}: {self.reason}"


class BadRowError(ValueError):
    """Raised under ``on_bad_row="error"``; the message lists the bad rows and how to skip them."""


@dataclass
class BadRowReport:
    """The rows left out of one load: ``count``, every :class:`BadRow`, and ``write(path)`` (JSON)."""

    source: str
    split: str
    total_rows: int = 0
    bad_rows: list[BadRow] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.bad_rows)

    def summary(self, first_n: int = REPORT_PREVIEW_ROWS) -> str:
        lines = [
            f"{self.count} of {self.total_rows} rows of {self.source} (split {self.split!r}) are unusable"
        ]
        lines += [f"  - {row}" for row in self.bad_rows[:first_n]]
        if self.count > first_n:
            lines.append(f"  ... and {self.count - first_n} more")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "split": self.split,
            "total_rows": self.total_rows,
            "count": self.count,
            "bad_rows": [
                {**asdict(row.origin), "id": row.row_id, "reason": row.reason} for row in self.bad_rows
            ],
        }

    def write(self, path: str | Path) -> Path:
        """Write the whole report as JSON (atomically); returns the path."""
        write_json(path, self.to_dict())
        return Path(path)


def validate_messages(messages: Any) -> str | None:
    """Why ``messages`` breaks the ``[system?, user, assistant]`` schema, or None when it is fine."""
    if not isinstance(messages, list) or not messages:
        return "'messages' must be a non-empty list of {role, content} turns"
    roles = []
    for index, turn in enumerate(messages):
        if not isinstance(turn, dict) or set(turn) != {"role", "content"}:
            return f"turn {index} must be an object with exactly the keys 'role' and 'content'"
        role, content = turn["role"], turn["content"]
        if role not in ROLES:
            return f"turn {index} has role {role!r}; expected one of {', '.join(ROLES)}"
        if not isinstance(content, str) or not content.strip():
            return f"empty {role} turn (turn {index})"
        roles.append(role)
    body = roles[1:] if roles[0] == "system" else roles
    if "user" not in body:
        return f"missing the user turn (the Text view); roles are {roles}"
    if "assistant" not in body:
        return f"missing the assistant turn (the Code view); roles are {roles}"
    if body != ["user", "assistant"]:
        return f"expected roles [system,] user, assistant in that order; got {roles}"
    return None


def conversation_length(tokenizer: Any, messages: list[dict[str, str]]) -> int:
    """Tokens in the whole chat-templated conversation (what training sees)."""
    text = tokenizer.apply_chat_template(messages, tokenize=False)
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def collect_examples(
    items: Iterable[Example | BadRow],
    *,
    source: str,
    split: str,
    on_bad_row: BadRowPolicy = "error",
    tokenizer: Any = None,
    max_length: int | None = None,
) -> tuple[list[dict[str, Any]], BadRowReport]:
    """Validate adapter output into schema rows, applying the bad-row policy. Returns ``(rows, report)``."""
    if on_bad_row not in BadRowPolicy.__args__:
        raise ValueError(f"on_bad_row must be one of {BadRowPolicy.__args__}, got {on_bad_row!r}")
    if (tokenizer is None) != (max_length is None):
        raise ValueError("the length check needs both a tokenizer and max_length (or neither)")
    report = BadRowReport(source=source, split=split)
    rows: list[dict[str, Any]] = []
    first_seen: dict[str, RowOrigin] = {}
    for item in items:
        report.total_rows += 1
        if isinstance(item, BadRow):
            report.bad_rows.append(item)
            continue
        reason = _row_problem(item, first_seen, tokenizer, max_length)
        if reason:
            report.bad_rows.append(BadRow(item.origin, reason, item.id))
            continue
        first_seen[item.id] = item.origin
        rows.append(item.as_row())
    if report.count and on_bad_row == "error":
        raise BadRowError(
            report.summary() + "\nFix these rows, or pass on_bad_row='skip' to leave them out with a report."
        )
    if report.count:
        logger.warning("skipping bad rows:\n%s", report.summary())
    if not rows:
        raise ValueError(f"{source} (split {split!r}) has no usable rows ({report.total_rows} read)")
    return rows, report


def _row_problem(item: Example, first_seen: dict[str, RowOrigin], tokenizer: Any, max_length: int | None):
    if not item.id:
        return "empty id"
    if item.id in first_seen:
        return f"duplicate id {item.id!r} (first at {first_seen[item.id]})"
    if item.task not in TASKS:
        return f"unknown task {item.task!r}; expected one of {', '.join(TASKS)}"
    reason = validate_messages(item.messages)
    if reason:
        return reason
    if not isinstance(item.reference, str) or not item.reference.strip():
        return "empty reference answer"
    if item.regex_dialect and (item.task != "regex" or item.regex_dialect not in REGEX_DIALECTS):
        return f"regex_dialect {item.regex_dialect!r} needs task 'regex' and one of {', '.join(REGEX_DIALECTS)}"
    if item.task == "sql" and not item.db_path:
        return "an SQL row needs db_path (the SQLite file to execute on)"
    if tokenizer is not None:
        length = conversation_length(tokenizer, item.messages)
        if length > max_length:
            return f"{length} tokens after the chat template, over max_length={max_length}"
    return None


def parse_json_line(line: str, origin: RowOrigin) -> tuple[dict[str, Any] | None, BadRow | None]:
    """A JSON object from one JSONL line, or the :class:`BadRow` explaining why not."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as err:
        return None, BadRow(origin, f"malformed JSON ({err.msg} at column {err.colno})")
    if not isinstance(record, dict):
        return None, BadRow(origin, f"expected a JSON object, got {type(record).__name__}")
    return record, None


def assign_split(key: str, test_fraction: float) -> Literal["train", "test"]:
    """A stable train/test assignment from a key's hash: the same key always lands in the same split."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    bucket = int(hashlib.sha1(key.encode("utf-8")).hexdigest()[:12], 16) / float(1 << 48)
    return "test" if bucket < test_fraction else "train"
