"""``spider:PATH``: Spider text-to-SQL (Yu et al. 2018), records ``{"db_id", "question", "query", ...}``.

``PATH`` is a Spider JSON file or the release folder (``train`` -> ``train_spider.json``, ``dev`` ->
``dev.json``, ``test`` -> ``test.json``). ``database_dir`` holds ``<db_id>/<db_id>.sqlite`` (default: the
release's ``database/`` folder, ``test_database/`` for the test split). The user turn carries the database
schema (the ``CREATE TABLE`` statements, read from the SQLite file) and the question; the assistant turn
and ``reference`` are the gold query; ``db_path`` is the SQLite file the execution metric runs on.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

from eval.llm_tasks import run_sql_readonly
from llm_jepa.data.registry import register_source
from llm_jepa.data.schema import BadRow, Example, RowOrigin, build_messages, system_prompt_for

SPLIT_FILES = {"train": "train_spider.json", "dev": "dev.json", "validation": "dev.json", "test": "test.json"}


@lru_cache(maxsize=256)
def database_schema(db_path: str) -> str:
    """The ``CREATE TABLE`` statements of a SQLite file, one per line."""
    rows = run_sql_readonly("SELECT sql FROM sqlite_master WHERE type = 'table' AND sql IS NOT NULL", db_path)
    return "\n".join(" ".join(sql.split()) + ";" for (sql,) in rows)


def _split_file(path: Path, split: str) -> Path:
    if path.is_file():
        return path
    if split not in SPLIT_FILES:
        raise ValueError(f"Spider split must be one of {', '.join(SPLIT_FILES)}, got {split!r}")
    file = path / SPLIT_FILES[split]
    if not file.is_file():
        raise FileNotFoundError(f"Spider split {split!r} expects {file}")
    return file


@register_source("spider", takes_path=True, description="Spider text-to-SQL JSON plus its SQLite databases")
def load_spider(
    path: Path,
    split: str,
    database_dir: str | None = None,
    include_schema: bool = True,
    system_prompt: str | None = None,
) -> Iterator[Example | BadRow]:
    """One example per Spider record; a missing database or field is a bad row naming the record."""
    file = _split_file(path, split)
    root = (
        Path(database_dir).expanduser()
        if database_dir
        else (file.parent / ("test_database" if split == "test" else "database"))
    )
    if not root.is_dir():
        raise FileNotFoundError(f"Spider database folder not found: {root} (pass database_dir=...)")
    try:
        records = json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{file}: not valid JSON ({err})") from err
    if not isinstance(records, list):
        raise TypeError(f"{file}: expected a JSON list of Spider records, got {type(records).__name__}")
    system = system_prompt_for("sql", system_prompt)
    for number, record in enumerate(records, start=1):
        origin = RowOrigin(str(file), number)  # record number in the JSON list
        fields = {
            name: record.get(name) if isinstance(record, dict) else None
            for name in ("db_id", "question", "query")
        }
        missing = [name for name, value in fields.items() if not isinstance(value, str) or not value.strip()]
        if missing:
            yield BadRow(origin, f"missing or empty field(s): {', '.join(missing)}")
            continue
        row_id = f"spider-{split}-{number}"
        db_path = root / fields["db_id"] / f"{fields['db_id']}.sqlite"
        if not db_path.is_file():
            yield BadRow(origin, f"database file not found: {db_path}", row_id)
            continue
        question = fields["question"].strip()
        if include_schema:
            question = f"Database schema:\n{database_schema(str(db_path))}\n\nQuestion: {question}"
        query = fields["query"].strip()
        yield Example(
            id=row_id,
            messages=build_messages(system, question, query),
            task="sql",
            reference=query,
            origin=origin,
            db_path=str(db_path.resolve()),
        )
