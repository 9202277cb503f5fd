"""A registry of data sources: ``"name"`` or ``"name:PATH"`` -> a messages :class:`datasets.Dataset`.

Each adapter registers itself with :func:`register_source`; nothing else inspects source strings.

>>> from llm_jepa.data import load_messages_dataset
>>> train = load_messages_dataset("regex-synth", split="train", n=100, seed=0)   # doctest: +SKIP
>>> dev = load_messages_dataset("spider:/data/spider", split="dev")  # doctest: +SKIP
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llm_jepa.data.schema import BadRow, BadRowPolicy, BadRowReport, Example, collect_examples

logger = logging.getLogger(__name__)

Loader = Callable[..., Iterable[Example | BadRow]]


@dataclass(frozen=True)
class DataSource:
    """A registered adapter: ``loader(path, split, **options)``, or ``loader(split, ...)`` without a path."""

    name: str
    loader: Loader
    takes_path: bool
    description: str

    def options(self) -> list[str]:
        skip = 2 if self.takes_path else 1
        return list(inspect.signature(self.loader).parameters)[skip:]


_SOURCES: dict[str, DataSource] = {}


def register_source(name: str, *, takes_path: bool, description: str) -> Callable[[Loader], Loader]:
    """Decorator adding an adapter under ``name`` (``name:PATH`` when ``takes_path``)."""

    def add(loader: Loader) -> Loader:
        if name in _SOURCES:
            raise ValueError(f"data source {name!r} is already registered")
        _SOURCES[name] = DataSource(name, loader, takes_path, description)
        return loader

    return add


def available_sources() -> dict[str, str]:
    """``{usage: description}`` for every registered source."""
    return {(f"{s.name}:PATH" if s.takes_path else s.name): s.description for s in _SOURCES.values()}


def parse_source(source: str) -> tuple[DataSource, Path | None]:
    """Split ``"name:PATH"`` / ``"name"`` into the registered source and its path."""
    name, sep, path = source.partition(":")
    spec = _SOURCES.get(name)
    if spec is None:
        known = "\n".join(f"  {usage}: {text}" for usage, text in available_sources().items())
        raise ValueError(f"unknown data source {source!r}; registered sources:\n{known}")
    if spec.takes_path and not (sep and path):
        raise ValueError(f"data source {name!r} needs a path: '{name}:PATH'")
    if not spec.takes_path and sep:
        raise ValueError(
            f"data source {name!r} takes no path; use '{name}' (options go in keyword arguments)"
        )
    return spec, Path(path).expanduser() if spec.takes_path else None


def _load_tokenizer(tokenizer: Any) -> Any:
    if isinstance(tokenizer, (str, Path)):
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(str(tokenizer))
    return tokenizer


def rows_to_dataset(rows: list[dict[str, Any]]):
    """A :class:`datasets.Dataset` with the fixed schema columns (stable types across sources); a row
    without ``regex_dialect`` gets "" (regex rows then parse as standard regexes)."""
    import datasets

    features = datasets.Features(
        {
            "messages": datasets.List(
                {"role": datasets.Value("string"), "content": datasets.Value("string")}
            ),
            "id": datasets.Value("string"),
            "task": datasets.Value("string"),
            "reference": datasets.Value("string"),
            "db_path": datasets.Value("string"),
            "regex_dialect": datasets.Value("string"),
        }
    )
    rows = [{"regex_dialect": "", **row} for row in rows]
    return datasets.Dataset.from_list(rows, features=features)


def load_messages_with_report(
    source: str,
    split: str = "train",
    *,
    on_bad_row: BadRowPolicy = "error",
    tokenizer: Any = None,
    max_length: int | None = None,
    bad_row_report: str | Path | None = None,
    **options: Any,
) -> tuple[Any, BadRowReport]:
    """Like :func:`load_messages_dataset`, also returning the :class:`BadRowReport`: ``(dataset, report)``."""
    spec, path = parse_source(source)
    unknown = sorted(set(options) - set(spec.options()))
    if unknown:
        raise TypeError(
            f"data source {spec.name!r} has no option(s) {', '.join(unknown)}; it takes: "
            f"{', '.join(spec.options()) or 'none'}"
        )
    items = spec.loader(path, split, **options) if spec.takes_path else spec.loader(split, **options)
    rows, report = collect_examples(
        items,
        source=source,
        split=split,
        on_bad_row=on_bad_row,
        tokenizer=_load_tokenizer(tokenizer),
        max_length=max_length,
    )
    if bad_row_report is not None:
        report.write(bad_row_report)
        logger.info("bad-row report (%d rows) written to %s", report.count, bad_row_report)
    logger.info("loaded %d rows from %s (split %r)", len(rows), source, split)
    return rows_to_dataset(rows), report


def load_messages_dataset(
    source: str,
    split: str = "train",
    *,
    on_bad_row: BadRowPolicy = "error",
    tokenizer: Any = None,
    max_length: int | None = None,
    bad_row_report: str | Path | None = None,
    **options: Any,
):
    """Load ``source`` (see :func:`available_sources`) as a messages :class:`datasets.Dataset`.

    Columns: ``messages`` (``[system?, user, assistant]``), ``id``, ``task``, ``reference``, ``db_path``,
    ``regex_dialect`` (see :mod:`llm_jepa.data.schema`).

    Args:
        source: ``jsonl:PATH``, ``gsm8k:PATH``, ``spider:PATH``, ``nl-rx:PATH``, ``regex-synth`` or
            ``gsm-symbolic``.
        split: which split to read or generate (e.g. ``train``, ``test``; Spider: ``train``, ``dev``).
        on_bad_row: ``error`` stops on unusable rows (listing them all); ``skip`` leaves them out and logs
            a report.
        tokenizer: a tokenizer or a folder; with ``max_length``, rows whose chat-templated conversation is
            longer are bad rows.
        max_length: the token limit for the check above.
        bad_row_report: write the report of unusable rows to this JSON file.
        **options: the source's own options (e.g. ``database_dir`` for Spider, ``n`` / ``seed`` for
            generated sources); unknown options are an error naming the valid ones.
    """
    dataset, _ = load_messages_with_report(
        source,
        split,
        on_bad_row=on_bad_row,
        tokenizer=tokenizer,
        max_length=max_length,
        bad_row_report=bad_row_report,
        **options,
    )
    return dataset
