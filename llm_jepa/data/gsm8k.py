"""``gsm8k:PATH``: grade-school math in the openai/gsm8k schema, ``{"question", "answer"}`` per record.

The answer is the worked solution ending in ``#### <final answer>``; the solution is the Code view and the
final answer the ``reference``. ``PATH`` is a ``.jsonl`` or ``.parquet`` file, or a folder with
``<split>.jsonl`` (the GitHub release) or ``[main/]<split>-*.parquet`` (the Hub dataset).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from eval.llm_tasks import gsm8k_final_answer
from llm_jepa.data.jsonl import resolve_split_file
from llm_jepa.data.registry import register_source
from llm_jepa.data.schema import (
    BadRow,
    Example,
    RowOrigin,
    build_messages,
    parse_json_line,
    system_prompt_for,
)


def _records(path: Path, split: str) -> Iterator[tuple[RowOrigin, dict[str, Any] | None, BadRow | None]]:
    if path.is_dir() and "{split}" not in str(path):
        parquet = sorted(path.glob(f"{split}-*.parquet")) or sorted(path.glob(f"main/{split}-*.parquet"))
        if parquet:
            yield from _parquet_records(parquet)
            return
    file = resolve_split_file(path, split, ".jsonl")
    if file.suffix == ".parquet":
        yield from _parquet_records([file])
        return
    with file.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                origin = RowOrigin(str(file), number)
                yield origin, *parse_json_line(line, origin)


def _parquet_records(files: list[Path]) -> Iterator[tuple[RowOrigin, dict[str, Any], None]]:
    import pyarrow.parquet as pq

    for file in files:
        for number, record in enumerate(pq.read_table(file).to_pylist(), start=1):
            yield RowOrigin(str(file), number), record, None


@register_source("gsm8k", takes_path=True, description="GSM8K question/answer records (openai/gsm8k schema)")
def load_gsm8k(path: Path, split: str, system_prompt: str | None = None) -> Iterator[Example | BadRow]:
    """One example per record: user = question, assistant = the full solution, reference = final answer."""
    system = system_prompt_for("gsm8k", system_prompt)
    for origin, record, bad in _records(path, split):
        if bad:
            yield bad
            continue
        row_id = f"gsm8k-{split}-{origin.line}"
        question, answer = record.get("question"), record.get("answer")
        if not isinstance(question, str) or not isinstance(answer, str):
            yield BadRow(origin, "needs string fields 'question' and 'answer'", row_id)
            continue
        final = gsm8k_final_answer(answer)
        if final is None:
            yield BadRow(origin, "answer has no '#### <final answer>' line", row_id)
            continue
        yield Example(
            id=row_id,
            messages=build_messages(system, question.strip(), answer.strip()),
            task="gsm8k",
            reference=final,
            origin=origin,
        )
