"""``easyvqa-unseen-constructions``: yes/no questions in constructions neither the training nor the robustness
grammar uses; labels by the flip rule."""

from __future__ import annotations

import pytest

from vljepa.data.paraphrase_grammar import PARAPHRASE_GRAMMAR
from vljepa.data.phrase_grammar import shared_phrases
from vljepa.data.question_frames import QuestionFrame, all_frames
from vljepa.data.reworded_grammar import ROBUST_GRAMMAR
from vljepa.data.unseen_constructions import (
    UNSEEN_GRAMMAR,
    load_easyvqa_unseen_constructions,
    unseen_construction_row,
)

CONSTRUCTIONS = ["agreement", "conditional", "ellipsis", "existential", "privative"]
PRESENCE = [frame for frame in all_frames() if frame.is_presence]


def test_the_constructions_share_nothing_with_either_grammar():
    unseen = set().union(*(UNSEEN_GRAMMAR.renderings(frame) for frame in PRESENCE))
    for other in (PARAPHRASE_GRAMMAR, ROBUST_GRAMMAR):
        assert not UNSEEN_GRAMMAR.all_templates() & other.all_templates()
        assert not UNSEEN_GRAMMAR.all_key_phrases() & other.all_key_phrases()
        strings = set().union(*(other.renderings(frame) for frame in all_frames()))
        assert not unseen & strings
        assert not shared_phrases(unseen, other.all_key_phrases()), other.name
        assert not shared_phrases(strings, UNSEEN_GRAMMAR.all_key_phrases()), other.name


def test_every_presence_frame_has_a_wording_in_every_construction():
    for frame in PRESENCE:
        assert sorted(UNSEEN_GRAMMAR.categories_for(frame)) == CONSTRUCTIONS, frame
        for rendering in UNSEEN_GRAMMAR.renderings(frame):
            assert (frame.color or frame.shape) in rendering and "{" not in rendering, rendering


def _row(question: str, answer: str, *, negated: bool) -> dict[str, str]:
    """The first question id whose row is asked negated (or not), by the row's own wording."""
    for index in range(200):
        row = unseen_construction_row(question, answer, f"test-q{index}", seed=0)
        frame = QuestionFrame("color_presence", color="red", negated=negated)
        if row["question"] in UNSEEN_GRAMMAR.renderings(frame, row["category"]):
            return row
    raise AssertionError("no question id gave the wanted row")


def test_rows_follow_the_flip_rule():
    assert _row("is there a red shape?", "yes", negated=False)["answer"] == "yes"
    assert _row("is there a red shape?", "yes", negated=True)["answer"] == "no"  # negation flips the answer
    assert _row("is there not a red shape in the image?", "yes", negated=False)["answer"] == "no"
    assert _row("is there not a red shape in the image?", "yes", negated=True)["answer"] == "yes"
    assert unseen_construction_row("what color is the shape?", "red", "test-q1", seed=0) is None
    first = unseen_construction_row("is there a circle?", "no", "test-q3", seed=0)
    assert first == unseen_construction_row("is there a circle?", "no", "test-q3", seed=0)  # seeded


def test_only_the_test_split_exists():
    with pytest.raises(ValueError, match="test split only"):
        load_easyvqa_unseen_constructions("train")


# Rows of the seed-0 set, read and checked by hand against the original question and answer.
HAND_CHECKED = {
    "test-q3-conditional": ("if i look at the image, will i fail to find a circle?", "yes"),  # contains a circle? no
    "test-q4-existential": ("is a black shape nowhere in the image?", "yes"),  # is there not a black shape? yes
    "test-q5-privative": ("is the image devoid of green shapes?", "yes"),  # contains a green shape? no
    "test-q6-ellipsis": ("zero green shapes in the image?", "yes"),  # is a green shape present? no
    "test-q8-conditional": ("if i look at the image, will i find a blue shape?", "no"),  # is no blue shape present? yes
    "test-q17-ellipsis": ("any brown shapes in the image?", "no"),  # is there a brown shape in the image? no
    "test-q48-agreement": ("true or false: the image doesn't hold a circle.", "no"),  # is a circle present? yes
}


@pytest.mark.bundled
def test_the_set_holds_every_yes_no_test_question_once():
    from vljepa.data import load_vl_dataset, validate_dataset

    dataset = load_vl_dataset("easyvqa-unseen-constructions", split="test")
    validate_dataset(dataset, "vqa", check_rows=300)
    assert sorted(set(dataset["category"])) == CONSTRUCTIONS
    assert set(dataset["question_type"]) == {"yes/no"}
    assert len(set(dataset["original_question_id"])) == len(dataset) == 7136  # every yes/no test question
    rows = {row["question_id"]: (row["question"], row["answers"][0]) for row in dataset.select(range(60))}
    assert {key: rows[key] for key in HAND_CHECKED} == HAND_CHECKED
    for row in dataset.select(range(300)):
        frame_answer = unseen_construction_row(row["original_question"], row["original_answer"],
                                               row["original_question_id"], seed=0)
        assert (row["question"], row["answers"][0], row["category"]) == (
            frame_answer["question"], frame_answer["answer"], frame_answer["category"])
