"""VQAv2 accuracy, re-implemented from the rules of the official evaluation script.

The official script is ``PythonEvaluationTools/vqaEvaluation/vqaEval.py`` in the VQA API
(github.com/GT-Vision-Lab/VQA). Its rules, reproduced here:

1. Newlines and tabs become spaces and both ends are stripped, for the prediction and every
   ground-truth answer.
2. Only when the ground-truth answers are *not all identical* are the answers and the prediction
   normalised (:func:`normalize_answer`): punctuation, then number words, articles and contractions.
   When they are all identical, comparison is on the stripped raw strings (so ``"Yes"`` does not
   match ten ``"yes"``: that is the official behaviour).
3. Accuracy is the mean, over each annotator ``i`` left out, of ``min(#other annotators that gave the
   prediction / 3, 1)``. With 10 answers this is the "3 of 10 humans agree" rule averaged over the
   10 choose 9 annotator subsets.

Punctuation (``processPunctuation``): for each character in the punctuation list, if it appears next
to a space anywhere in the *input* (``"p "`` or ``" p"``), or the input contains a digit-comma-digit
group (``"1,000"``), every occurrence is deleted; otherwise every occurrence becomes a space. Then
periods not followed by a digit are deleted. The official call passes ``re.UNICODE`` (= 32) as the
``count`` argument of ``re.sub``, so at most 32 periods are removed; we keep that. Its period
pattern ``(?!<=\\d)(\\.)(?!\\d)`` starts with a lookahead (not the lookbehind it resembles), so a period
after a digit is deleted too (``"2."`` -> ``"2"``), and ``"2.5"`` is kept.

Deviation (documented): with a *single* ground-truth answer the leave-one-out average is undefined
(the official loop would always give 0), so :func:`vqa_accuracy` returns normalised exact match,
``1.0`` if ``normalize_answer(prediction) == normalize_answer(answer)`` else ``0.0``.

Example::

    >>> vqa_accuracy("Two", ["2", "2", "two", "2", "3"])
    1.0
    >>> round(vqa_accuracy("Two", ["2", "2", "two", "3"]), 4)  # 3 of 4 with "2": 3 x 2/3 + 1, over 4
    0.75
    >>> normalize_answer("The dog's  bowl.")
    "dog's bowl"
"""

from __future__ import annotations

import re
from collections.abc import Sequence

# processDigitArticle: number words up to ten (and "none") become digits.
NUMBER_WORDS: dict[str, str] = {
    "none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4",
    "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10",
}  # fmt: skip

ARTICLES: frozenset[str] = frozenset({"a", "an", "the"})

# Contractions written without their apostrophe are restored (word by word, after lower-casing).
# Entries with capitals ("Im", "Ive", "Id've", "I'dve") never match lower-cased words; the official
# table has them, and so do we. "somebody'd" -> "somebodyd" is in the official table too.
CONTRACTIONS: dict[str, str] = {
    "aint": "ain't", "arent": "aren't", "cant": "can't", "couldve": "could've", "couldnt": "couldn't",
    "couldn'tve": "couldn't've", "couldnt've": "couldn't've", "didnt": "didn't", "doesnt": "doesn't",
    "dont": "don't", "hadnt": "hadn't", "hadnt've": "hadn't've", "hadn'tve": "hadn't've",
    "hasnt": "hasn't", "havent": "haven't", "hed": "he'd", "hed've": "he'd've", "he'dve": "he'd've",
    "hes": "he's", "howd": "how'd", "howll": "how'll", "hows": "how's", "Id've": "I'd've",
    "I'dve": "I'd've", "Im": "I'm", "Ive": "I've", "isnt": "isn't", "itd": "it'd", "itd've": "it'd've",
    "it'dve": "it'd've", "itll": "it'll", "let's": "let's", "maam": "ma'am", "mightnt": "mightn't",
    "mightnt've": "mightn't've", "mightn'tve": "mightn't've", "mightve": "might've",
    "mustnt": "mustn't", "mustve": "must've", "neednt": "needn't", "notve": "not've",
    "oclock": "o'clock", "oughtnt": "oughtn't", "ow's'at": "'ow's'at", "'ows'at": "'ow's'at",
    "'ow'sat": "'ow's'at", "shant": "shan't", "shed've": "she'd've", "she'dve": "she'd've",
    "she's": "she's", "shouldve": "should've", "shouldnt": "shouldn't", "shouldnt've": "shouldn't've",
    "shouldn'tve": "shouldn't've", "somebody'd": "somebodyd", "somebodyd've": "somebody'd've",
    "somebody'dve": "somebody'd've", "somebodyll": "somebody'll", "somebodys": "somebody's",
    "someoned": "someone'd", "someoned've": "someone'd've", "someone'dve": "someone'd've",
    "someonell": "someone'll", "someones": "someone's", "somethingd": "something'd",
    "somethingd've": "something'd've", "something'dve": "something'd've", "somethingll": "something'll",
    "thats": "that's", "thered": "there'd", "thered've": "there'd've", "there'dve": "there'd've",
    "therere": "there're", "theres": "there's", "theyd": "they'd", "theyd've": "they'd've",
    "they'dve": "they'd've", "theyll": "they'll", "theyre": "they're", "theyve": "they've",
    "twas": "'twas", "wasnt": "wasn't", "wed've": "we'd've", "we'dve": "we'd've", "weve": "we've",
    "werent": "weren't", "whatll": "what'll", "whatre": "what're", "whats": "what's",
    "whatve": "what've", "whens": "when's", "whered": "where'd", "wheres": "where's",
    "whereve": "where've", "whod": "who'd", "whod've": "who'd've", "who'dve": "who'd've",
    "wholl": "who'll", "whos": "who's", "whove": "who've", "whyll": "why'll", "whyre": "why're",
    "whys": "why's", "wont": "won't", "wouldve": "would've", "wouldnt": "wouldn't",
    "wouldnt've": "wouldn't've", "wouldn'tve": "wouldn't've", "yall": "y'all", "yall'll": "y'all'll",
    "y'allll": "y'all'll", "yall'd've": "y'all'd've", "y'alld've": "y'all'd've",
    "y'all'dve": "y'all'd've", "youd": "you'd", "youd've": "you'd've", "you'dve": "you'd've",
    "youll": "you'll", "youre": "you're", "youve": "you've",
}  # fmt: skip

# Characters handled by processPunctuation. Apostrophes, colons and periods are not in the list.
PUNCTUATION: tuple[str, ...] = (
    ";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@", "`", ",", "?", "!",
)  # fmt: skip

_PERIOD = re.compile(r"(?!<=\d)(\.)(?!\d)")
_DIGIT_COMMA_DIGIT = re.compile(r"(\d)(,)(\d)")
# The official script passes re.UNICODE as re.sub's positional `count` argument.
_OFFICIAL_PERIOD_COUNT = int(re.UNICODE)


def _clean_whitespace(text: str) -> str:
    return text.replace("\n", " ").replace("\t", " ").strip()


def process_punctuation(text: str) -> str:
    """The official ``processPunctuation`` (see the module docstring for its rule)."""
    out = text
    delete_all = _DIGIT_COMMA_DIGIT.search(text) is not None
    for mark in PUNCTUATION:
        if delete_all or (mark + " ") in text or (" " + mark) in text:
            out = out.replace(mark, "")
        else:
            out = out.replace(mark, " ")
    return _PERIOD.sub("", out, count=_OFFICIAL_PERIOD_COUNT)


def process_digits_articles(text: str) -> str:
    """The official ``processDigitArticle``: lower-case, number words to digits, drop articles,
    restore contractions, single spaces."""
    words = [NUMBER_WORDS.get(word, word) for word in text.lower().split()]
    words = [CONTRACTIONS.get(word, word) for word in words if word not in ARTICLES]
    return " ".join(words)


def normalize_answer(text: str) -> str:
    """Whitespace cleanup, punctuation, number words, articles and contractions, as the official script.

    >>> normalize_answer("  Two dogs!\\n")
    '2 dogs'
    """
    if not isinstance(text, str):
        raise TypeError(f"answers must be strings, got {type(text).__name__}: {text!r}")
    return process_digits_articles(process_punctuation(_clean_whitespace(text)))


def vqa_accuracy(prediction: str, gt_answers: Sequence[str]) -> float:
    """VQAv2 accuracy of one prediction against the annotators' answers, in [0, 1].

    Args:
        prediction: the model's answer.
        gt_answers: every annotator's answer (10 in VQAv2; repeats are meaningful).
    """
    if isinstance(gt_answers, str):
        raise TypeError("gt_answers must be a list of answers, got a single string")
    answers = list(gt_answers)
    if not answers:
        raise ValueError("gt_answers is empty: VQA accuracy needs at least one ground-truth answer")
    for answer in (prediction, *answers):
        if not isinstance(answer, str):
            raise TypeError(f"answers must be strings, got {type(answer).__name__}: {answer!r}")
    if len(answers) == 1:
        return float(normalize_answer(prediction) == normalize_answer(answers[0]))

    predicted = _clean_whitespace(prediction)
    answers = [_clean_whitespace(answer) for answer in answers]
    if len(set(answers)) > 1:
        answers = [process_digits_articles(process_punctuation(answer)) for answer in answers]
        predicted = process_digits_articles(process_punctuation(predicted))
    matches = sum(answer == predicted for answer in answers)
    # Leaving annotator i out removes one match exactly when annotator i gave the prediction.
    total = 0.0
    for answer in answers:
        others_matching = matches - (answer == predicted)
        total += min(others_matching / 3.0, 1.0)
    return total / len(answers)


YES_NO_ANSWERS: frozenset[str] = frozenset({"yes", "no"})


def is_yes_no_question(gt_answers: Sequence[str]) -> bool:
    """Whether every ground-truth answer is "yes" or "no" (after :func:`normalize_answer`)."""
    return bool(gt_answers) and all(normalize_answer(answer) in YES_NO_ANSWERS for answer in gt_answers)


def accuracy_by_group(accuracies: Sequence[float], groups: Sequence[str]) -> dict[str, float]:
    """Mean accuracy per group name (e.g. per question type or reworded category), sorted by name.

    >>> accuracy_by_group([1.0, 0.0, 1.0], ["a", "a", "b"])
    {'a': 0.5, 'b': 1.0}
    """
    if len(accuracies) != len(groups):
        raise ValueError(f"{len(accuracies)} accuracies but {len(groups)} group names")
    totals: dict[str, list[float]] = {}
    for accuracy, group in zip(accuracies, groups):
        totals.setdefault(group, []).append(float(accuracy))
    return {group: sum(values) / len(values) for group, values in sorted(totals.items())}


def yes_no_answer_rate(predictions: Sequence[str], gt_answers: Sequence[Sequence[str]]) -> float | None:
    """Share of yes/no questions (see :func:`is_yes_no_question`) whose prediction is "yes" or "no".

    A model that understands the question answers a yes/no question with yes or no, right or wrong;
    anything else (a colour, a shape) means the question's form was not understood. ``None`` when
    there is no yes/no question.

    >>> yes_no_answer_rate(["yes", "red", "no", "circle"], [["no"], ["yes"], ["no"], ["circle"]])
    0.6666666666666666
    """
    if len(predictions) != len(gt_answers):
        raise ValueError(f"{len(predictions)} predictions but {len(gt_answers)} answer lists")
    answered = [
        normalize_answer(prediction) in YES_NO_ANSWERS
        for prediction, answers in zip(predictions, gt_answers)
        if is_yes_no_question(answers)
    ]
    return sum(answered) / len(answered) if answered else None
