"""``jsonl:PATH``: chat JSONL, one ``{"messages": [...]}`` object per line (the LLM-JEPA scripts' format).

Optional keys per line: ``id`` (default ``<file stem>-<line>``), ``task``, ``reference`` (default: the
assistant turn, or its ``####`` final answer for gsm8k), ``db_path`` (SQL rows; relative to the JSONL
file's folder) and ``regex_dialect`` (regex rows: ``standard`` or ``nl-rx``). Other keys are ignored. ``PATH`` is a file, a folder holding ``<split>.jsonl``, or a
pattern containing ``{split}`` (e.g. ``jsonl:data/synth_{split}.jsonl``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from eval.llm_tasks import gsm8k_final_answer
from llm_jepa.data.registry import register_source
from llm_jepa.data.schema import (
    REGEX_DIALECTS,
    TASKS,
    BadRow,
    Example,
    RegexDialectName,
    RowOrigin,
    TaskName,
    parse_json_line,
)

logger = logging.getLogger(__name__)


_SPLIT_IN_NAME = re.compile(r"^(?P<prefix>.*?[_-])?(?P<split>train|test|dev|validation|val)$")


def resolve_split_file(path: Path, split: str, suffix: str) -> Path:
    """The file holding ``split``: ``path/<split><suffix>`` for a folder, ``path`` with ``{split}`` filled in,
    or ``path`` itself. A file named after another split (``train.jsonl``, ``synth_train.jsonl``) is swapped
    for its sibling of the requested split, so that evaluating "test" never reads the training file.
    """
    if "{split}" in str(path):
        path = Path(str(path).replace("{split}", split))
    elif path.is_dir():
        path = path / f"{split}{suffix}"
    elif (named := _SPLIT_IN_NAME.match(path.stem)) and named["split"] != split:
        sibling = path.with_name(f"{named['prefix'] or ''}{split}{path.suffix}")
        if not sibling.is_file():
            raise FileNotFoundError(
                f"{path} holds the {named['split']!r} split but split {split!r} was asked for, and {sibling} "
                "does not exist; pass the file of that split"
            )
        logger.info("split %r: reading %s (sibling of %s)", split, sibling, path.name)
        path = sibling
    elif path.is_file():
        logger.info("reading %s as split %r (its name names no split)", path, split)
    if not path.is_file():
        raise FileNotFoundError(f"data file not found: {path}")
    return path


def _reference(record: dict[str, Any], task: str, messages: Any) -> str | None:
    if "reference" in record:
        return str(record["reference"])
    assistant = [t.get("content") for t in messages if isinstance(t, dict) and t.get("role") == "assistant"]
    if len(assistant) != 1 or not isinstance(assistant[0], str):
        return ""  # the messages check reports the real problem
    return gsm8k_final_answer(assistant[0]) if task == "gsm8k" else assistant[0]


@register_source("jsonl", takes_path=True, description="chat JSONL, one {'messages': [...]} per line")
def load_jsonl(
    path: Path, split: str, task: TaskName = "generic", regex_dialect: RegexDialectName = "standard"
) -> Iterator[Example | BadRow]:
    """Yield one :class:`Example` (or :class:`BadRow`) per non-blank line of the JSONL file.

    ``regex_dialect`` is the syntax of the file's regex rows (``nl-rx`` for NL-RX-style ``&`` / ``~``); a
    line's own ``regex_dialect`` key overrides it.
    """
    if task not in TASKS:
        raise ValueError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
    if regex_dialect not in REGEX_DIALECTS:
        raise ValueError(f"regex_dialect must be one of {', '.join(REGEX_DIALECTS)}, got {regex_dialect!r}")
    file = resolve_split_file(path, split, ".jsonl")
    with file.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            origin = RowOrigin(str(file), number)
            record, bad = parse_json_line(line, origin)
            if bad:
                yield bad
                continue
            if "messages" not in record:
                yield BadRow(origin, "no 'messages' key", str(record.get("id", "")) or None)
                continue
            row_task = record.get("task", task)
            row_id = str(record.get("id", f"{file.stem}-{number}"))
            reference = _reference(record, row_task, record["messages"])
            if reference is None:
                yield BadRow(origin, "gsm8k row without a '#### <answer>' line in the assistant turn", row_id)
                continue
            db_path = record.get("db_path", "")
            if db_path:
                db_path = str((file.parent / db_path).resolve())
            yield Example(
                id=row_id,
                messages=record["messages"],
                task=row_task,
                reference=reference,
                origin=origin,
                db_path=db_path,
                regex_dialect=str(record.get("regex_dialect", regex_dialect if row_task == "regex" else "")),
            )
