"""``easyvqa-unseen-constructions``: easy-VQA's yes/no test questions in constructions no grammar here uses.

Why a second robustness set: the training paraphrase grammar's ``syntax`` category was written after looking
at ``easyvqa-reworded``'s failures (:mod:`vljepa.data.paraphrase_grammar` says which constructions), so for those
constructions ``easyvqa-reworded`` measures unseen wordings, not unseen constructions. This set was written
afterwards and evaluated without changing anything in response: five polar-question constructions that neither
the training grammar nor the robustness grammar uses, in words neither uses
(``tests/vljepa/test_data_unseen_constructions.py`` proves both disjointnesses):

* ``ellipsis``: no verb ("any red shapes in the image?", "zero circles in the image?");
* ``conditional``: "if i look at the image, will i find a circle?" / "... will i fail to find ...";
* ``agreement``: "do you agree that the image holds a circle?", "true or false: the image doesn't hold ...";
* ``existential``: "does there exist a circle in the image?" / "is a circle nowhere in the image?";
* ``privative``: "is the image home to a circle?" / "is the image devoid of circles?".

How it is built (split ``test`` only): every easy-VQA test yes/no question is parsed into its frame
(:func:`~vljepa.data.question_frames.parse_question`); a generator seeded with ``(seed, question_id)`` draws
whether to ask it negated (1/2), then a construction among those with a template for that form, then the
template. The answer follows the flip rule (:func:`~vljepa.data.question_frames.reworded_answer`), so no label
is invented. Columns as ``easyvqa-reworded``'s (``category`` is the construction), so ``vljepa eval`` reports
accuracy per construction and the share of questions answered with yes or no.

Example:
    >>> from vljepa.data import load_vl_dataset
    >>> ds = load_vl_dataset("easyvqa-unseen-constructions", split="test")
    >>> sorted(set(ds["category"]))
    ['agreement', 'conditional', 'ellipsis', 'existential', 'privative']
"""

from __future__ import annotations

import datasets

from vljepa.data.cache import cached_dataset
from vljepa.data.easyvqa import _package_key
from vljepa.data.phrase_grammar import PhraseGrammar, presence_forms, stable_rng
from vljepa.data.question_frames import parse_question, reworded_answer
from vljepa.data.reworded import rows_from_test_questions

_ONE = {"color_target": "a {col} shape", "shape_target": "a {shp}"}
_MANY = {"color_target": "{col} shapes", "shape_target": "{shp}s"}

UNSEEN_TEMPLATES: dict[str, dict[str, tuple[str, ...]]] = {
    "ellipsis": presence_forms(has=("any {target} in the image?",), no=("zero {target} in the image?",), **_MANY),
    "conditional": presence_forms(
        has=("if i look at the image, will i find {target}?",),
        no=("if i look at the image, will i fail to find {target}?",),
        **_ONE,
    ),
    "agreement": presence_forms(
        has=("do you agree that the image holds {target}?", "true or false: the image holds {target}."),
        no=("do you agree that the image doesn't hold {target}?", "true or false: the image doesn't hold {target}."),
        **_ONE,
    ),
    "existential": presence_forms(
        has=("does there exist {target} in the image?",), no=("is {target} nowhere in the image?",), **_ONE
    ),
    "privative": {
        **presence_forms(has=("is the image home to {target}?",), no=(), **_ONE),
        **presence_forms(has=(), no=("is the image devoid of {target}?",), **_MANY),
    },
}

UNSEEN_KEY_PHRASES: tuple[str, ...] = (
    "any", "zero", "if i look", "will i", "fail to", "do you agree", "true or false", "holds", "hold", "doesn't",
    "there exist", "nowhere", "home to", "devoid of",
)

UNSEEN_GRAMMAR = PhraseGrammar(
    name="easyvqa-unseen-constructions", templates=UNSEEN_TEMPLATES, words={}, key_phrases=UNSEEN_KEY_PHRASES
)


def unseen_construction_row(question: str, answer: str, question_id: str, *, seed: int) -> dict[str, str] | None:
    """``{"question", "answer", "category"}`` for a yes/no question; None for a shape or colour question."""
    frame = parse_question(question)
    if not frame.is_presence:
        return None
    rng = stable_rng(seed, question_id, "unseen-construction")
    negated = rng.random() < 0.5
    asked = frame.with_negation(negated)
    category = rng.choice(UNSEEN_GRAMMAR.categories_for(asked))
    return {"question": UNSEEN_GRAMMAR.render(asked, category, rng),
            "answer": reworded_answer(frame, answer, negated=negated), "category": category}


def _build(seed: int, use_cache: bool) -> datasets.Dataset:
    def rows_of(question: str, answer: str, question_id: str) -> list[dict[str, str]]:
        row = unseen_construction_row(question, answer, question_id, seed=seed)
        return [] if row is None else [row]

    return rows_from_test_questions(rows_of, use_cache)


def load_easyvqa_unseen_constructions(split: str = "test", *, seed: int = 0, use_cache: bool = True) -> datasets.Dataset:
    """easy-VQA's yes/no test questions in constructions no grammar here uses (see the module docstring)."""
    if split != "test":
        raise ValueError(f"easyvqa-unseen-constructions is an evaluation set built from easy-VQA's test split only; "
                         f"got split={split!r}. Use split='test'.")
    key = f"easyvqa-unseen-constructions-test-s{seed}-{_package_key()}-{UNSEEN_GRAMMAR.fingerprint()}"
    return cached_dataset(key, lambda: _build(seed, use_cache), split=split, use_cache=use_cache)
