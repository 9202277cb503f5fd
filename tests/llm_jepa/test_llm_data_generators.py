"""Generated sources: regex-synth (grammar) and gsm-symbolic (bundled templates, cached)."""

from __future__ import annotations

import random
import re

import greenery
import pytest

from eval.llm_tasks import regex_equivalent, regex_to_fsm
from llm_jepa.data import generate_gsm_symbolic, generate_regex_synth, load_messages_dataset
from llm_jepa.data.regex_synth import WORDS, language_mask, probe_lines


def pairs(dataset):
    return [(row["messages"][-2]["content"], row["reference"]) for row in dataset]


@pytest.fixture(scope="module")
def synth():
    return {
        "train": generate_regex_synth(120, seed=0),
        "test": generate_regex_synth(40, seed=0, split="test"),
        "test-seed1": generate_regex_synth(40, seed=1, split="test"),
        "nl-rx": generate_regex_synth(40, seed=0, operators="nl-rx"),
    }


def test_regex_synth_is_deterministic_by_seed(synth):
    assert pairs(generate_regex_synth(40, seed=0, split="test")) == pairs(synth["test"])
    assert pairs(synth["test-seed1"]) != pairs(synth["test"])
    assert list(synth["train"]["id"][:2]) == ["regex-synth-train-0-1", "regex-synth-train-0-2"]
    assert set(synth["train"]["task"]) == {"regex"}


def test_regex_synth_rows_are_distinct_and_in_nlrx_style(synth):
    for dataset in synth.values():
        descriptions, regexes = zip(*pairs(dataset))
        assert len(set(descriptions)) == len(descriptions) and len(set(regexes)) == len(regexes)
        assert all(text.startswith("lines ") for text in descriptions)
    texts = " | ".join(d for d, _ in pairs(synth["train"]))
    for phrase in ("containing", "starting with", "ending with", "followed by", "or more times", " or "):
        assert phrase in texts
    nlrx = " ".join(r for _, r in pairs(synth["nl-rx"]))
    assert "~(" in nlrx and ")&(" in nlrx


def test_regex_synth_splits_share_no_regex_and_no_language(synth):
    train = pairs(synth["train"])
    for name in ("test", "test-seed1"):
        test = pairs(synth[name])
        assert not {r for _, r in train} & {r for _, r in test}
        assert not {d for d, _ in train} & {d for d, _ in test}
    # an independent check of language overlap: fingerprints on probe lines the generator never saw, then
    # greenery equivalence for any train/test pair those cannot tell apart
    rng = random.Random("independent probes")
    pieces = list("0123456789AEIOUBKQaeioubkqz .-") + list(WORDS)
    probes = [""] + [
        "".join(
            rng.choice(pieces) * (rng.randint(2, 8) if rng.random() < 0.3 else 1)
            for _ in range(rng.randint(1, 5))
        )
        for _ in range(800)
    ]

    def fingerprint(regex):
        return tuple(bool(re.fullmatch(regex, p)) for p in probes)

    train_prints = {}
    for _, regex in train:
        train_prints.setdefault(fingerprint(regex), []).append(regex)
    twins = [
        (regex, twin)
        for _, regex in pairs(synth["test"]) + pairs(synth["test-seed1"])
        for twin in train_prints.get(fingerprint(regex), [])
    ]
    assert len(twins) < 20  # the probes tell almost all languages apart; greenery settles the rest
    for regex, twin in twins:
        assert not regex_equivalent(regex, twin, dialect="standard"), (regex, twin)


def test_generated_regexes_are_valid_for_greenery_and_re(synth):
    regexes = [r for _, r in pairs(synth["train"])]
    for regex in regexes:
        re.compile(regex)
    for regex in regexes[:25]:  # greenery is slow (~0.1 s a regex); a sample is enough
        assert not greenery.parse(regex).to_fsm().empty()


def test_language_masks_match_greenery_automata(synth):
    """The probe masks the split relies on agree with real automata, NL-RX operators included."""
    probes = probe_lines()
    rng = random.Random(0)
    for _, regex in pairs(synth["nl-rx"])[:12]:
        fsm = regex_to_fsm(regex, dialect="nl-rx")
        mask = _nlrx_mask(regex)
        for index in rng.sample(range(len(probes)), 60):
            assert fsm.accepts(probes[index]) == bool(mask >> index & 1), (regex, probes[index])


def _nlrx_mask(regex):
    """Mask of an NL-RX regex built from standard parts: ~(P), (P)&(Q), (P)|(Q) or P."""
    every = (1 << len(probe_lines())) - 1
    if regex.startswith("~(") and regex.endswith(")") and "&" not in regex:
        return every & ~language_mask(regex[2:-1])
    if ")&(" in regex:
        left, right = regex[1:-1].split(")&(", 1)
        return _nlrx_mask(left) & _nlrx_mask(right)
    return language_mask(regex)


def test_regex_synth_registry_defaults_and_validation():
    assert len(load_messages_dataset("regex-synth", split="test", n=3, seed=5)) == 3
    with pytest.raises(ValueError, match="splits are 'train' and 'test'"):
        load_messages_dataset("regex-synth", split="dev", n=3)
    with pytest.raises(ValueError, match="operators must be one of"):
        generate_regex_synth(3, seed=0, operators="perl")


# ---------------------------------------------------------------------------------------------- gsm-symbolic

GSM_OPTIONS = {"max_templates": 10, "max_combinations": 20_000}


@pytest.mark.bundled
def test_gsm_symbolic_generates_caches_and_splits_by_template(tmp_path, monkeypatch):
    monkeypatch.setenv("JEPA_CACHE_DIR", str(tmp_path / "cache"))
    train = generate_gsm_symbolic(8, seed=0, **GSM_OPTIONS)
    cached = list((tmp_path / "cache" / "gsm-symbolic").glob("*/*.jsonl"))
    assert len(cached) == 1 and "seed=0" in cached[0].name and "n=8" in cached[0].name
    assert not list(cached[0].parent.glob(".*.tmp"))  # atomic write left no staging file

    from multilingual_gsm_symbolic import templates

    def no_generation(*args, **kwargs):
        raise AssertionError("a cached dataset must not be regenerated")

    monkeypatch.setattr(templates.AnnotatedQuestion, "generate_questions", no_generation)
    again = generate_gsm_symbolic(8, seed=0, **GSM_OPTIONS)
    assert pairs(again) == pairs(train)
    monkeypatch.undo()
    monkeypatch.setenv("JEPA_CACHE_DIR", str(tmp_path / "cache"))

    fresh = generate_gsm_symbolic(8, seed=0, use_cache=False, **GSM_OPTIONS)
    assert pairs(fresh) == pairs(train)  # deterministic by seed
    assert pairs(generate_gsm_symbolic(8, seed=1, use_cache=False, **GSM_OPTIONS)) != pairs(train)
    test = generate_gsm_symbolic(3, seed=0, split="test", **GSM_OPTIONS)

    def templates_of(dataset):
        return {row_id.split("-t")[1].split("-")[0] for row_id in dataset["id"]}

    assert templates_of(train) and templates_of(test) and not templates_of(train) & templates_of(test)
    for row in train:
        assert row["task"] == "gsm8k" and re.fullmatch(r"-?\d+(\.\d+)?", row["reference"])
        assert row["messages"][-1]["content"].replace(",", "").endswith(f"#### {row['reference']}")
