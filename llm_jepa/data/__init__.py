"""LLM-JEPA data: every source becomes one chat schema (``messages``, ``id``, ``task``, ``reference``,
``db_path``) through a registry of adapters.

Start with :mod:`~llm_jepa.data.schema` (the schema and the bad-row policy) and :mod:`~llm_jepa.data.registry`
(``load_messages_dataset``); then one adapter per source: :mod:`~.gsm8k`, :mod:`~.gsm_symbolic` (generated),
:mod:`~.jsonl`, :mod:`~.nlrx`, :mod:`~.regex_synth` (generated), :mod:`~.spider`.

>>> from llm_jepa.data import available_sources, load_messages_dataset
>>> sorted(available_sources())   # doctest: +NORMALIZE_WHITESPACE
['gsm-symbolic', 'gsm8k:PATH', 'jsonl:PATH', 'nl-rx:PATH', 'regex-synth', 'spider:PATH']
"""

from llm_jepa.data import gsm8k, gsm_symbolic, jsonl, nlrx, regex_synth, spider  # noqa: F401  (registration)
from llm_jepa.data.gsm_symbolic import generate_gsm_symbolic
from llm_jepa.data.regex_synth import generate_regex_synth
from llm_jepa.data.registry import (
    available_sources,
    load_messages_dataset,
    load_messages_with_report,
    register_source,
)
from llm_jepa.data.schema import BadRow, BadRowError, BadRowPolicy, BadRowReport, RowOrigin, validate_messages

__all__ = [
    "BadRow",
    "BadRowError",
    "BadRowPolicy",
    "BadRowReport",
    "RowOrigin",
    "available_sources",
    "generate_gsm_symbolic",
    "generate_regex_synth",
    "load_messages_dataset",
    "load_messages_with_report",
    "register_source",
    "validate_messages",
]
