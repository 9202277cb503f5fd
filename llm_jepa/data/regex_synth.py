"""``regex-synth``: a deterministic NL-to-regex generator in the style of NL-RX-SYNTH (Locascio et al. 2016).

NL-RX-SYNTH, one of the datasets LLM-JEPA (arXiv 2509.14252) fine-tunes and evaluates on, pairs a regex
built from a small grammar with a description read off the same parse tree. This generator does the same
with its own grammar:

* atoms: character classes (``[0-9]`` "a number", ``[A-Z]``, ``[a-z]``, ``[A-Za-z]``, ``[AEIOUaeiou]``,
  ``.`` "a character") and strings (``dog`` "the string 'dog'");
* expressions: an atom, ``(a){n,}`` "a, n or more times", ``(a).*(b)`` "a followed by b",
  ``((a)|(b))`` "either a or b";
* line predicates (regexes match whole lines, as in NL-RX): ``.*E.*`` "containing E", ``E(.*)`` "starting
  with E", ``(.*)E`` "ending with E", ``([0-9])+`` "containing only numbers", ``(.){n,}`` "with at least n
  characters", and ``(P)|(Q)`` "P or Q"; with ``operators="nl-rx"`` also NL-RX's ``~(P)`` "not P" and
  ``(P)&(Q)`` "P and Q".

Each candidate's language is summarised by a *mask*: which of a fixed set of probe lines (built from the
grammar's classes, strings and runs; the same for every seed) it matches in full. Equivalent regexes always
get the same mask, and the train/test split is a hash of the mask, so a test regex is never equivalent to a
training regex, whatever ``n`` and ``seed``. Candidates matching no probe or every probe (empty or
all-lines languages), boolean combinations that match exactly what one of their parts does, and masks
already produced are dropped. Every regex is valid for ``greenery`` (and Python ``re`` with the standard
operators), which the metric :func:`eval.llm_tasks.regex_equivalent` builds automata with.

>>> data = generate_regex_synth(5, seed=0)
>>> data[0]["messages"][1]["content"], data[0]["reference"]
('lines containing a lower-case letter followed by a vowel', '.*([a-z]).*([AEIOUaeiou]).*')
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from functools import lru_cache
from typing import Any, Literal

from llm_jepa.data.registry import register_source, rows_to_dataset
from llm_jepa.data.schema import (
    Example,
    RowOrigin,
    assign_split,
    build_messages,
    collect_examples,
    system_prompt_for,
)

Operators = Literal["standard", "nl-rx"]
Phrase = tuple[str, str, str]  # (description, negated description, regex)

CLASSES = {  # name: (regex, singular, plural)
    "number": ("[0-9]", "a number", "numbers"),
    "capital": ("[A-Z]", "a capital letter", "capital letters"),
    "lower": ("[a-z]", "a lower-case letter", "lower-case letters"),
    "letter": ("[A-Za-z]", "a letter", "letters"),
    "vowel": ("[AEIOUaeiou]", "a vowel", "vowels"),
    "character": (".", "a character", "characters"),
}
WORDS = (
    "dog",
    "truck",
    "ring",
    "lake",
    "cat",
    "tree",
    "blue",
    "river",
    "apple",
    "house",
    "car",
    "sun",
    "book",
    "road",
    "fish",
    "bird",
    "door",
    "star",
    "moon",
    "rock",
)
MIN_REPEAT, MAX_REPEAT = 2, 6
DEFAULT_SIZES = {"train": 2000, "test": 200}
MAX_FRUITLESS_DRAWS = 5000
PROBE_COUNT = 2000


def _atom(rng: random.Random, *, allow_dot: bool = True) -> tuple[str, str]:
    """(regex unit, description) of a class or a string."""
    if rng.random() < 0.3:
        word = rng.choice(WORDS)
        return f"({word})", f"the string '{word}'"
    names = [name for name in CLASSES if allow_dot or name != "character"]
    regex, singular, _ = CLASSES[rng.choice(names)]
    return f"({regex})", singular


def _expression(rng: random.Random) -> tuple[str, str]:
    """(concatenable regex, description) of an atom, a repetition, a sequence or an alternative."""
    kind = rng.choices(["atom", "repeat", "seq", "alt"], weights=[4, 2, 3, 2])[0]
    if kind == "atom":
        return _atom(rng, allow_dot=False)
    if kind == "repeat":
        regex, text = _atom(rng, allow_dot=False)
        count = rng.randint(MIN_REPEAT, MAX_REPEAT)
        return f"{regex}{{{count},}}", f"{text}, {count} or more times"
    if kind == "seq":
        (first, first_text), (second, second_text) = _atom(rng), _atom(rng)
        return f"{first}.*{second}", f"{first_text} followed by {second_text}"
    options = sorted({_atom(rng, allow_dot=False) for _ in range(rng.choice([2, 2, 3]))})
    if len(options) == 1:
        return options[0]
    texts = [text for _, text in options]
    listed = f"{texts[0]} or {texts[1]}" if len(texts) == 2 else f"{texts[0]}, {texts[1]}, or {texts[2]}"
    return "(" + "|".join(regex for regex, _ in options) + ")", f"either {listed}"


def _predicate(rng: random.Random) -> tuple[str, Phrase]:
    """(kind, (description, negated description, regex)) of a single line predicate."""
    kind = rng.choices(["contains", "starts", "ends", "only", "length"], weights=[5, 3, 3, 1, 1])[0]
    if kind == "only":
        name = rng.choice([n for n in CLASSES if n != "character"])
        regex, _, plural = CLASSES[name]
        return kind, (f"containing only {plural}", f"not containing only {plural}", f"({regex})+")
    if kind == "length":
        count = rng.randint(MIN_REPEAT, MAX_REPEAT + 2)
        return kind, (
            f"with at least {count} characters",
            f"with fewer than {count} characters",
            f"(.){{{count},}}",
        )
    regex, text = _expression(rng)
    if kind == "contains":
        verb = rng.choice(["containing", "with", "having"])
        return kind, (f"{verb} {text}", f"{rng.choice(['not containing', 'without'])} {text}", f".*{regex}.*")
    if kind == "starts":
        verb = rng.choice(["starting with", "beginning with"])
        return kind, (f"{verb} {text}", f"not {verb} {text}", f"{regex}(.*)")
    return kind, (f"ending with {text}", f"not ending with {text}", f"(.*){regex}")


def _candidate(rng: random.Random, operators: Operators) -> tuple[str, str, int, tuple[int, ...]]:
    """(description, regex, language mask, masks of the parts) for one line description."""
    shapes = ["single", "or"] + (["not", "and"] if operators == "nl-rx" else [])
    weights = [6, 2] + ([2, 3] if operators == "nl-rx" else [])
    shape = rng.choices(shapes, weights=weights)[0]
    kind, (text, negated, regex) = _predicate(rng)
    mask = language_mask(regex)
    every_line = (1 << len(probe_lines())) - 1
    if shape == "single":
        return f"lines {text}", regex, mask, ()
    if shape == "not":
        return f"lines {negated}", f"~({regex})", every_line & ~mask, ()
    other_kind, (other_text, other_negated, other_regex) = _predicate(rng)
    while other_kind == kind:  # "containing a or containing b" is "containing either a or b"
        other_kind, (other_text, other_negated, other_regex) = _predicate(rng)
    other_mask = language_mask(other_regex)
    if shape == "or":
        return (
            f"lines {text} or {other_text}",
            f"({regex})|({other_regex})",
            mask | other_mask,
            (mask, other_mask),
        )
    if rng.random() < 0.3:
        other_text, other_regex, other_mask = other_negated, f"~({other_regex})", every_line & ~other_mask
    return (
        f"lines {text} and {other_text}",
        f"({regex})&({other_regex})",
        mask & other_mask,
        (mask, other_mask),
    )


@lru_cache(maxsize=1)
def probe_lines() -> tuple[str, ...]:
    """A fixed set of lines built from the grammar's pieces (classes, strings, runs), shared by all seeds."""
    rng = random.Random("regex-synth/probes")
    pieces = list("0123456789AEIOUBCDXYZaeioubcdfgklmnrstz -.") + list(WORDS)
    lines = {"", *pieces}
    while len(lines) < PROBE_COUNT:
        segments = []
        for _ in range(rng.randint(1, 5)):
            piece = rng.choice(pieces)
            segments.append(piece * (rng.randint(2, MAX_REPEAT + 2) if rng.random() < 0.3 else 1))
        lines.add("".join(segments))
    return tuple(sorted(lines))


@lru_cache(maxsize=1 << 16)
def language_mask(regex: str) -> int:
    """Bit i set when the (standard-syntax) regex matches probe line i in full."""
    match = re.compile(regex).fullmatch
    return int("".join("1" if match(line) else "0" for line in reversed(probe_lines())), 2)


def regex_synth_examples(
    n: int,
    seed: int,
    *,
    split: str = "train",
    test_fraction: float = 0.2,
    operators: Operators = "standard",
    system_prompt: str | None = None,
) -> Iterator[Example]:
    """Yield ``n`` description/regex examples of ``split``, deterministic in ``seed`` (see the module doc)."""
    if split not in ("train", "test"):
        raise ValueError(f"regex-synth splits are 'train' and 'test', got {split!r}")
    if operators not in Operators.__args__:
        raise ValueError(f"operators must be one of {Operators.__args__}, got {operators!r}")
    if n <= 0:
        raise ValueError(f"n must be positive, got {n}")
    rng = random.Random(f"regex-synth/{seed}")
    every_line = (1 << len(probe_lines())) - 1
    system = system_prompt_for("regex", system_prompt)
    seen: set[int] = set()
    produced = fruitless = 0
    while produced < n:
        description, regex, mask, part_masks = _candidate(rng, operators)
        usable = mask not in seen and mask not in (0, every_line) and mask not in part_masks
        if usable and assign_split(f"{mask:x}", test_fraction) == split:
            seen.add(mask)
            produced += 1
            fruitless = 0
            yield Example(
                id=f"regex-synth-{split}-{seed}-{produced}",
                task="regex",
                reference=regex,
                messages=build_messages(system, description, regex),
                origin=RowOrigin(f"regex-synth(seed={seed})", produced),
                regex_dialect=operators,
            )
            continue
        fruitless += 1
        if fruitless > MAX_FRUITLESS_DRAWS:
            raise RuntimeError(
                f"regex-synth found only {produced} distinct languages for split {split!r} "
                f"(n={n}); the grammar is exhausted, ask for fewer examples"
            )


@register_source(
    "regex-synth", takes_path=False, description="generated NL-RX-SYNTH-style description/regex pairs"
)
def load_regex_synth(
    split: str,
    n: int | None = None,
    seed: int = 0,
    test_fraction: float = 0.2,
    operators: Operators = "standard",
    system_prompt: str | None = None,
) -> Iterator[Example]:
    """Registry entry; ``n`` defaults to 2000 for train and 200 for test."""
    size = n if n is not None else DEFAULT_SIZES.get(split, DEFAULT_SIZES["test"])
    return regex_synth_examples(
        size, seed, split=split, test_fraction=test_fraction, operators=operators, system_prompt=system_prompt
    )


def generate_regex_synth(n: int, seed: int, *, split: str = "train", **options: Any):
    """``n`` generated examples of ``split`` as a messages :class:`datasets.Dataset`; ``options`` as
    :func:`regex_synth_examples` (``test_fraction``, ``operators``, ``system_prompt``)."""
    rows, _ = collect_examples(regex_synth_examples(n, seed, split=split, **options), source="regex-synth", split=split)
    return rows_to_dataset(rows)
