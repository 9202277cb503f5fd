"""VQAv2 accuracy: the official script's normalisation rules and leave-one-annotator-out average."""

from __future__ import annotations

import random

import pytest

from eval.vqa import accuracy_by_group, is_yes_no_question, normalize_answer, vqa_accuracy, yes_no_answer_rate


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # whitespace, case
        ("  Two\tdogs\n", "2 dogs"),
        ("YES", "yes"),
        # number words -> digits (only up to ten, and "none")
        ("two", "2"),
        ("none", "0"),
        ("ten", "10"),
        ("eleven", "eleven"),
        # articles dropped
        ("a dog", "dog"),
        ("An apple", "apple"),
        ("the the", ""),
        # contractions restored; the official table's capitalised keys never match lower-cased words
        ("dont", "don't"),
        ("whats up", "what's up"),
        ("cant", "can't"),
        ("im", "im"),
        # punctuation next to a space anywhere in the input is deleted ...
        ("yes !", "yes"),
        ("a-b -c", "ab c"),
        # ... otherwise replaced by a space
        ("a-b c", "b c"),
        ("black/white", "black white"),
        ("t-shirt", "t shirt"),
        # a digit,digit group anywhere deletes every punctuation mark
        ("1,000", "1000"),
        ("1,000-2", "10002"),
        ("1000-2", "1000 2"),
        # periods: removed unless a digit follows
        ("dog.", "dog"),
        ("2.5", "2.5"),
        ("2.", "2"),
        ("U.S.A", "usa"),
        # apostrophes and colons are not in the punctuation list
        ("10:30", "10:30"),
        ("dog's", "dog's"),
    ],
)
def test_normalize_answer(raw, expected):
    assert normalize_answer(raw) == expected


def test_period_removal_is_capped_at_32_like_the_official_call():
    # vqaEval.py passes re.UNICODE (32) as re.sub's count.
    assert normalize_answer("." * 40) == "." * 8


# Matched by k of 10 annotators (the other answers all differ from the prediction and each other):
# acc = [k * min((k - 1) / 3, 1) + (10 - k) * min(k / 3, 1)] / 10.
@pytest.mark.parametrize(
    ("matches", "expected"), [(0, 0.0), (1, 0.3), (2, 0.6), (3, 0.9), (4, 1.0), (10, 1.0)]
)
def test_leave_one_out_average_with_ten_answers(matches, expected):
    answers = ["cat"] * matches + [f"other{i}" for i in range(10 - matches)]
    assert vqa_accuracy("cat", answers) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("prediction", "answers", "expected"),
    [
        ("2", ["two"] * 3 + ["3"] * 7, 0.9),  # number word
        ("Two.", ["2"] * 3 + ["3"] * 7, 0.9),  # case and period
        ("don't", ["dont"] * 4 + ["no"] * 6, 1.0),  # contraction
        ("the dog", ["a dog"] * 4 + ["cat"] * 6, 1.0),  # articles
        ("yes", ["yes!"] * 2 + ["yes"] * 2 + ["no"] * 6, 1.0),  # punctuation
        ("t shirt", ["t-shirt"] * 2 + ["shirt"] * 8, 0.6),  # hyphen becomes a space
    ],
)
def test_answers_that_differ_only_in_form_match(prediction, answers, expected):
    assert vqa_accuracy(prediction, answers) == pytest.approx(expected)


def test_two_annotators_one_agreeing():
    # Leaving out the agreeing annotator leaves no match (0); leaving out the other leaves one (1/3).
    assert vqa_accuracy("dog", ["dog", "cat"]) == pytest.approx((0 + 1 / 3) / 2)
    assert vqa_accuracy("bird", ["dog", "cat"]) == 0.0


def test_identical_answers_are_not_normalised_as_in_the_official_script():
    assert vqa_accuracy("yes", ["yes"] * 10) == 1.0
    assert vqa_accuracy(" yes\n", ["yes"] * 10) == 1.0  # whitespace is always cleaned
    assert vqa_accuracy("Yes", ["yes"] * 10) == 0.0
    assert vqa_accuracy("Yes", ["yes"] * 9 + ["Yes"]) == 1.0  # not identical -> normalised


@pytest.mark.parametrize(
    ("prediction", "answer", "expected"),
    [
        ("2", "Two", 1.0),
        ("the dog.", "Dog", 1.0),
        ("dont", "don't", 1.0),
        ("cat", "dog", 0.0),
        ("Yes", "yes", 1.0),
    ],
)
def test_single_answer_is_normalised_exact_match(prediction, answer, expected):
    assert vqa_accuracy(prediction, [answer]) == expected


def test_matches_a_literal_leave_one_out_loop():
    """The counting shortcut equals the official loop over annotators (on pre-normalised answers)."""
    rng = random.Random(0)
    vocabulary = ["cat", "dog", "2", "yes", "no"]
    for _ in range(200):
        answers = [rng.choice(vocabulary) for _ in range(rng.randint(2, 10))]
        prediction = rng.choice(vocabulary)
        expected = []
        for left_out in range(len(answers)):
            others = answers[:left_out] + answers[left_out + 1 :]
            expected.append(min(1.0, sum(other == prediction for other in others) / 3))
        assert vqa_accuracy(prediction, answers) == pytest.approx(sum(expected) / len(expected))


def test_bad_inputs():
    with pytest.raises(ValueError, match="empty"):
        vqa_accuracy("yes", [])
    with pytest.raises(TypeError, match="list of answers"):
        vqa_accuracy("yes", "yes")
    with pytest.raises(TypeError, match="strings"):
        vqa_accuracy("yes", ["yes", 3])


def test_accuracy_by_group():
    assert accuracy_by_group([1.0, 0.0, 1.0, 0.5], ["b", "a", "b", "a"]) == {"a": 0.25, "b": 1.0}
    assert accuracy_by_group([], []) == {}
    with pytest.raises(ValueError, match="2 accuracies but 1 group"):
        accuracy_by_group([1.0, 0.0], ["a"])


def test_yes_no_questions_are_found_by_their_answers():
    assert is_yes_no_question(["yes"]) and is_yes_no_question(["No", "yes", "no."])
    assert not is_yes_no_question(["yes", "2"]) and not is_yes_no_question([])


def test_yes_no_answer_rate():
    predictions = ["yes", "red", "No", "circle", "no"]
    answers = [["no"], ["yes"], ["no"], ["circle"], ["yes", "yes", "no"]]
    assert yes_no_answer_rate(predictions, answers) == pytest.approx(
        3 / 4
    )  # the circle question is not yes/no
    assert yes_no_answer_rate(["red"], [["red"]]) is None
    with pytest.raises(ValueError, match="1 predictions but 2"):
        yes_no_answer_rate(["yes"], [["yes"], ["no"]])
