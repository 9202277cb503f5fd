"""``easyvqa-paraphrased``: easy-VQA's train questions, some reworded by the training paraphrase grammar.

How it is built (split ``train`` only): the easy-VQA train rows, same number and order. For each row a
generator seeded with ``(seed, question_id)`` decides, with probability ``paraphrase_prob``, to replace
the question by a paraphrase; the other rows keep the original question. A paraphrase:

1. parses the question into its frame (:func:`vljepa.data.question_frames.parse_question`);
2. for a yes/no question, draws whether to ask it negated (probability 1/2), and sets the answer by the
   flip rule (:func:`vljepa.data.question_frames.reworded_answer`): the fact stays, the wording's
   negation decides yes or no. Shape and colour answers never change;
3. words it with the training grammar (:mod:`vljepa.data.paraphrase_grammar`): a category, a template
   and one word per field, all from the same seeded generator.

With ``balance_presence=True`` (off by default), step 0 comes first for yes/no questions: easy-VQA asks
"is there a X?" about an absent X 82 % of the time, so a model can score 82 % on yes/no questions from the
wording alone. Balancing re-asks each presence question, with probability 1/2, about the attribute the
image has (answer from the image's own train facts, :func:`vljepa.data.easyvqa.image_facts`) and otherwise
about one it lacks, in the question's own wording; the answer follows from those facts, so no label is
invented, and after balancing every wording is answered yes and no equally often. Images whose facts do
not determine the attribute keep their question.

The training grammar is disjoint from the robustness set's (``easyvqa-reworded``) by construction: no
shared template, word-list entry or key phrase, and no question that both can produce (tested). It
words the 35 easy-VQA frames in 1,880 distinct ways; a run (1 epoch, paraphrase_prob 0.5) sees ~1,950
distinct questions.

Columns: the ``vqa`` schema plus ``original_question``, ``original_answer``, ``paraphrased`` (bool) and
``balanced`` (bool: re-asked about another value by ``balance_presence``).
Cached as Arrow like :mod:`vljepa.data.easyvqa`, keyed by the package, seed, probability and a hash of
the grammar.

Example:
    >>> from vljepa.data import load_vl_dataset
    >>> train = load_vl_dataset("easyvqa-paraphrased", split="train", paraphrase_prob=0.5)
    >>> len(train)
    38575
"""

from __future__ import annotations

import re

import datasets

from vljepa.data.cache import cached_dataset
from vljepa.data.easyvqa import EASYVQA_COLORS, EASYVQA_SHAPES, _package_key, image_facts, load_easyvqa
from vljepa.data.paraphrase_grammar import PARAPHRASE_GRAMMAR
from vljepa.data.phrase_grammar import PhraseGrammar, stable_rng
from vljepa.data.question_frames import parse_question, reworded_answer
from vljepa.data.reworded import text_columns
from vljepa.data.schema import with_extra_features

PARAPHRASE_EXTRA_FEATURES = {
    "original_question": datasets.Value("string"),
    "original_answer": datasets.Value("string"),
    "paraphrased": datasets.Value("bool"),
    "balanced": datasets.Value("bool"),
}


def paraphrase_question(
    question: str,
    answer: str,
    question_id: str,
    *,
    seed: int,
    paraphrase_prob: float,
    grammar: PhraseGrammar = PARAPHRASE_GRAMMAR,
) -> tuple[str, str, bool]:
    """``(question, answer, paraphrased)`` for one train row (see the module docstring)."""
    rng = stable_rng(seed, question_id, "paraphrase")
    if rng.random() >= paraphrase_prob:
        return question, answer, False
    frame = parse_question(question)
    if frame.is_presence:
        negated = rng.random() < 0.5
        answer = reworded_answer(frame, answer, negated=negated)
        frame = frame.with_negation(negated)
    category = rng.choice(grammar.categories_for(frame))
    return grammar.render(frame, category, rng), answer, True


def balance_presence_question(question: str, answer: str, question_id: str, facts, *, seed: int) -> tuple[str, str]:
    """``(question, answer)``: a presence question re-asked about a present or absent value, 1/2 each.

    ``facts`` is the image's :class:`vljepa.data.easyvqa.ImageFacts`. Other questions, and presence
    questions whose attribute the facts do not determine, are returned unchanged.
    """
    frame = parse_question(question)
    if not frame.is_presence:
        return question, answer
    asks_color = frame.kind == "color_presence"
    true_value = facts.color if asks_color else facts.shape
    if not true_value:
        return question, answer
    asked = frame.color if asks_color else frame.shape
    rng = stable_rng(seed, question_id, "balance")
    vocabulary = EASYVQA_COLORS if asks_color else EASYVQA_SHAPES
    value = true_value if rng.random() < 0.5 else rng.choice([v for v in vocabulary if v != true_value])
    new_question = re.sub(rf"\b{asked}\b", value, question, count=1)
    present = value == true_value
    return new_question, "yes" if present != frame.negated else "no"


def _build(seed: int, paraphrase_prob: float, balance_presence: bool, use_cache: bool) -> datasets.Dataset:
    columns = text_columns(load_easyvqa("train", use_cache=use_cache))
    columns["original_question"] = list(columns["question"])
    columns["original_answer"] = [answers[0] for answers in columns["answers"]]
    columns["paraphrased"] = []
    columns["balanced"] = []
    facts = image_facts("train") if balance_presence else {}
    for index, (question, answer, question_id, image_id) in enumerate(
        zip(columns["original_question"], columns["original_answer"], columns["question_id"], columns["image_id"])
    ):
        if balance_presence:
            upstream_id = int(image_id.rsplit("-", 1)[1])
            question, answer = balance_presence_question(
                question, answer, question_id, facts[upstream_id], seed=seed
            )
        columns["balanced"].append(question != columns["original_question"][index])
        new_question, new_answer, paraphrased = paraphrase_question(
            question, answer, question_id, seed=seed, paraphrase_prob=paraphrase_prob
        )
        columns["question"][index] = new_question
        columns["answers"][index] = [new_answer]
        columns["paraphrased"].append(paraphrased)
    features = with_extra_features("vqa", PARAPHRASE_EXTRA_FEATURES)
    return datasets.Dataset.from_dict(columns, features=features, split=datasets.Split("train"))


def load_easyvqa_paraphrased(
    split: str = "train",
    *,
    paraphrase_prob: float = 0.5,
    balance_presence: bool = False,
    seed: int = 0,
    use_cache: bool = True,
) -> datasets.Dataset:
    """easy-VQA train rows with a share ``paraphrase_prob`` of questions paraphrased (module docstring)."""
    if split != "train":
        raise ValueError(
            f"easyvqa-paraphrased is a training augmentation of easy-VQA's train split; got split={split!r}. "
            "Use split='train'; evaluate on 'easyvqa' (test) or 'easyvqa-reworded' (test)."
        )
    if not 0.0 <= paraphrase_prob <= 1.0:
        raise ValueError(f"easyvqa-paraphrased: paraphrase_prob must be in [0, 1], got {paraphrase_prob}")
    grammar = PARAPHRASE_GRAMMAR.fingerprint()
    balance = "-balanced" if balance_presence else ""
    key = f"easyvqa-paraphrased-train-s{seed}-p{paraphrase_prob:g}{balance}-{_package_key()}-{grammar}"
    return cached_dataset(
        key, lambda: _build(seed, paraphrase_prob, balance_presence, use_cache), split=split, use_cache=use_cache
    )
