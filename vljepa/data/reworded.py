"""``easyvqa-reworded``: easy-VQA's test questions asked in other words (a robustness evaluation set).

How it is built (split ``test`` only; there is no training split by design):

1. Every easy-VQA test question (9,673, over the 1,000 test images) is parsed into a frame
   (:func:`vljepa.data.question_frames.parse_question`).
2. Each question gets one row in a category drawn uniformly from ``synonyms``, ``word_order``,
   ``imperative``, ``polite`` and ``figure`` by a generator seeded with ``(seed, question_id)``. The frame
   keeps its negation, so the answer is the original answer.
3. In addition, each yes/no question gets a ``negation`` row with probability ``NEGATION_SHARE`` (0.28,
   drawn from the same seed): the same fact asked negated ("is the shape anything but red?"). A plain
   question's answer flips; a question that was already negated keeps its answer.
4. The wording is drawn from the robustness grammar (:mod:`vljepa.data.reworded_grammar`): a template
   of the frame's form in the category, then one word per field, all seeded by ``(seed, question_id,
   category)``. No wording equals an original easy-VQA question.

With ``seed=0`` this gives 11,676 rows, 1,888 to 2,003 per category (2,003 ``negation`` rows); about 3 in
4 rows of each rewording category are yes/no questions, as in easy-VQA. The same seed always gives the
same rows.

Columns: the ``vqa`` schema (``answers`` holds the one answer, ``candidates`` all 13 easy-VQA answers,
``question_type`` the original's: ``shape``, ``color`` or ``yes/no``; ``question_id`` is
``"<original question_id>-<category>"``) plus ``category``, ``original_question``,
``original_question_id`` and ``original_answer``. Images are the original test images (paths into the
installed package). Built once and cached as Arrow like :mod:`vljepa.data.easyvqa`, keyed by the
package, the seed and a hash of the grammar.

Example:
    >>> from vljepa.data import load_vl_dataset
    >>> ds = load_vl_dataset("easyvqa-reworded", split="test")
    >>> sorted(set(ds["category"]))
    ['figure', 'imperative', 'negation', 'polite', 'synonyms', 'word_order']
"""

from __future__ import annotations

from collections.abc import Callable

import datasets

from vljepa.data.cache import cached_dataset
from vljepa.data.easyvqa import _package_key, load_easyvqa
from vljepa.data.phrase_grammar import PhraseGrammar, stable_rng
from vljepa.data.question_frames import parse_question, reworded_answer
from vljepa.data.reworded_grammar import NEGATION_CATEGORY, ROBUST_GRAMMAR
from vljepa.data.schema import with_extra_features

REWORDING_CATEGORIES: tuple[str, ...] = ("synonyms", "word_order", "imperative", "polite", "figure")
CATEGORIES: tuple[str, ...] = (*REWORDING_CATEGORIES, NEGATION_CATEGORY)
NEGATION_SHARE = 0.28
REWORDED_EXTRA_FEATURES = {
    "category": datasets.Value("string"),
    "original_question": datasets.Value("string"),
    "original_question_id": datasets.Value("string"),
    "original_answer": datasets.Value("string"),
}


def text_columns(dataset: datasets.Dataset) -> dict[str, list]:
    """The rows of an easy-VQA split as columns, with image paths instead of decoded images."""
    undecoded = dataset.cast_column("image", datasets.Image(decode=False))
    columns = {name: list(undecoded[name]) for name in undecoded.column_names if name != "image"}
    columns["image"] = [value["path"] for value in list(undecoded["image"])]
    return columns


def reworded_rows(
    question: str, answer: str, question_id: str, *, seed: int, grammar: PhraseGrammar = ROBUST_GRAMMAR
) -> list[dict[str, str]]:
    """The reworded rows of one original question: ``{"question", "answer", "category"}`` each.

    One row in a rewording category, plus a ``negation`` row for some yes/no questions (module docstring).
    """
    frame = parse_question(question)
    category = stable_rng(seed, question_id, "category").choice(REWORDING_CATEGORIES)
    rows = [
        {
            "question": grammar.render(frame, category, stable_rng(seed, question_id, category)),
            "answer": answer,
            "category": category,
        }
    ]
    if frame.is_presence and stable_rng(seed, question_id, NEGATION_CATEGORY).random() < NEGATION_SHARE:
        negated = frame.with_negation(True)
        rows.append(
            {
                "question": grammar.render(
                    negated, NEGATION_CATEGORY, stable_rng(seed, question_id, "negation-words")
                ),
                "answer": reworded_answer(frame, answer, negated=True),
                "category": NEGATION_CATEGORY,
            }
        )
    return rows


def rows_from_test_questions(
    rows_of: Callable[[str, str, str], list[dict[str, str]]], use_cache: bool
) -> datasets.Dataset:
    """The easy-VQA test set re-asked: ``rows_of(question, answer, question_id)`` gives each original question's
    rows (``{"question", "answer", "category"}``), each kept on the original image with the original's columns."""
    source = text_columns(load_easyvqa("test", use_cache=use_cache))
    features = with_extra_features("vqa", REWORDED_EXTRA_FEATURES)
    columns: dict[str, list] = {name: [] for name in features}
    for index, question in enumerate(source["question"]):
        answer = source["answers"][index][0]
        question_id = source["question_id"][index]
        for row in rows_of(question, answer, question_id):
            for name in ("image", "question_type", "candidates", "image_id"):
                columns[name].append(source[name][index])
            columns["question"].append(row["question"])
            columns["answers"].append([row["answer"]])
            columns["question_id"].append(f"{question_id}-{row['category']}")
            columns["category"].append(row["category"])
            columns["original_question"].append(question)
            columns["original_question_id"].append(question_id)
            columns["original_answer"].append(answer)
    return datasets.Dataset.from_dict(columns, features=features, split=datasets.Split("test"))


def _build(seed: int, use_cache: bool) -> datasets.Dataset:
    return rows_from_test_questions(lambda q, a, qid: reworded_rows(q, a, qid, seed=seed), use_cache)


def load_easyvqa_reworded(split: str = "test", *, seed: int = 0, use_cache: bool = True) -> datasets.Dataset:
    """easy-VQA test questions in other words, one ``category`` per row (see the module docstring)."""
    if split != "test":
        raise ValueError(
            "easyvqa-reworded is an evaluation set built from easy-VQA's test split only; "
            f"got split={split!r}. "
            "Use split='test'; to train, use 'easyvqa' or 'easyvqa-paraphrased' (its own, disjoint wordings)."
        )
    key = f"easyvqa-reworded-test-s{seed}-{_package_key()}-{ROBUST_GRAMMAR.fingerprint()}"
    return cached_dataset(key, lambda: _build(seed, use_cache), split=split, use_cache=use_cache)
