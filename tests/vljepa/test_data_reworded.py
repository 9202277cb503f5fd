"""easy-VQA in other words: question frames, the robustness set (easyvqa-reworded), the training
paraphrases (easyvqa-paraphrased) and the proof that their two grammars are disjoint."""

from __future__ import annotations

import pytest

from vljepa.data.easyvqa import ImageFacts
from vljepa.data.paraphrase import balance_presence_question, load_easyvqa_paraphrased, paraphrase_question
from vljepa.data.paraphrase_grammar import PARAPHRASE_GRAMMAR
from vljepa.data.phrase_grammar import PhraseGrammar, contains_phrase, shared_phrases
from vljepa.data.question_frames import (
    FORMS,
    NEGATED_FORMS,
    QuestionFrame,
    all_frames,
    parse_question,
    reworded_answer,
)
from vljepa.data.reworded import CATEGORIES, load_easyvqa_reworded, reworded_rows
from vljepa.data.reworded_grammar import NEGATION_CATEGORY, ROBUST_GRAMMAR

F = QuestionFrame


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("JEPA_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def easyvqa_questions() -> list[str]:
    easy_vqa = pytest.importorskip("easy_vqa")
    return sorted(set(easy_vqa.get_train_questions()[0]) | set(easy_vqa.get_test_questions()[0]))


@pytest.mark.parametrize(
    ("question", "frame"),
    [
        ("what shape is in the image?", F("shape")),
        ("what shape does the image contain?", F("shape")),
        ("what is the blue shape?", F("shape", color="blue")),
        ("what color is the shape?", F("color")),
        ("what color is the triangle?", F("color", shape="triangle")),
        ("what is the color of the circle?", F("color", shape="circle")),
        ("is there a red shape?", F("color_presence", color="red")),
        ("is there a red shape in the image?", F("color_presence", color="red")),
        ("does the image contain a circle?", F("shape_presence", shape="circle")),
        ("is a rectangle present?", F("shape_presence", shape="rectangle")),
        ("is there not a circle?", F("shape_presence", shape="circle", negated=True)),
        ("is no red shape present?", F("color_presence", color="red", negated=True)),
        ("does the image not contain a triangle?", F("shape_presence", shape="triangle", negated=True)),
        ("  Is there NOT a  Teal shape in the image? ", F("color_presence", color="teal", negated=True)),
    ],
)
def test_parse_hand_checked_questions(question, frame):
    assert parse_question(question) == frame


@pytest.mark.parametrize("question", ["what size is the circle?", "is there a purple shape?", ""])
def test_parse_rejects_other_questions(question):
    with pytest.raises(ValueError, match="not one of easy-VQA's question templates"):
        parse_question(question)


def test_frames_reject_impossible_combinations():
    with pytest.raises(ValueError, match="only presence"):
        F("shape", negated=True)
    with pytest.raises(ValueError, match="cannot name"):
        F("color", color="red")
    with pytest.raises(ValueError, match="needs the colour or shape"):
        F("shape_presence")
    assert len(all_frames()) == len(set(all_frames())) == 35
    assert {frame.form for frame in all_frames()} == set(FORMS)


@pytest.mark.parametrize(
    ("frame", "answer", "negated", "expected"),
    [
        (F("color_presence", color="red"), "yes", True, "no"),  # plain -> negated flips
        (F("color_presence", color="red"), "no", True, "yes"),
        (F("shape_presence", shape="circle", negated=True), "yes", True, "yes"),  # stays negated: kept
        (F("shape_presence", shape="circle", negated=True), "yes", False, "no"),  # un-negated: flips
        (F("shape_presence", shape="circle"), "no", False, "no"),
        (F("color", shape="triangle"), "blue", False, "blue"),  # colour/shape answers never change
        (F("shape", color="red"), "circle", False, "circle"),
    ],
)
def test_answer_flip_rules(frame, answer, negated, expected):
    assert reworded_answer(frame, answer, negated=negated) == expected


def test_answer_rules_reject_nonsense():
    with pytest.raises(ValueError, match="no negated form"):
        reworded_answer(F("color"), "red", negated=True)
    with pytest.raises(ValueError, match="yes/no answer"):
        reworded_answer(F("color_presence", color="red"), "red", negated=False)


def test_every_frame_has_a_wording_in_every_category():
    for frame in all_frames():
        expected = set(CATEGORIES) if frame.form in NEGATED_FORMS else set(CATEGORIES) - {NEGATION_CATEGORY}
        assert set(ROBUST_GRAMMAR.categories_for(frame)) == expected, frame
        assert PARAPHRASE_GRAMMAR.categories_for(frame), frame
        for grammar in (ROBUST_GRAMMAR, PARAPHRASE_GRAMMAR):
            for rendering in grammar.renderings(frame):
                named = frame.color or frame.shape
                assert named in rendering, (frame, rendering)
                assert "{" not in rendering and rendering == rendering.strip().lower(), rendering


def test_grammars_are_disjoint_by_construction():
    robust, train = ROBUST_GRAMMAR, PARAPHRASE_GRAMMAR
    assert not robust.all_templates() & train.all_templates()
    assert not robust.all_key_phrases() & train.all_key_phrases()
    robust_strings = set().union(*(robust.renderings(frame) for frame in all_frames()))
    train_strings = set().union(*(train.renderings(frame) for frame in all_frames()))
    assert not robust_strings & train_strings
    # No marker of one grammar (synonym, negation, request, politeness) ever appears in the other's output.
    assert not shared_phrases(train_strings, robust.all_key_phrases())
    assert not shared_phrases(robust_strings, train.all_key_phrases())
    # The training wordings stay few enough to cache a language model's states per distinct question.
    assert len(train_strings) == 1880  # the figure in vljepa/data/paraphrase.py's docstring (<= ~3,000)


def test_disjointness_check_catches_a_shared_word():
    leaky = PhraseGrammar(
        name="leaky",
        templates={"x": {"color": ("what {hue} does the shape have?",)}},
        words={"hue": ("pigment",)},
    )
    strings = leaky.renderings(F("color"))
    assert shared_phrases(strings, PARAPHRASE_GRAMMAR.all_key_phrases()) == {
        ("what pigment does the shape have?", "pigment")
    }
    assert contains_phrase("is there no red shape?", "no") and not contains_phrase("do you know?", "no")


def _rows_until(question: str, answer: str, want_negation: bool) -> list[dict]:
    for index in range(200):
        rows = reworded_rows(question, answer, f"test-q{index}", seed=0)
        if (len(rows) == 2) == want_negation:
            return rows
    raise AssertionError("no question id gave the wanted rows")


def test_reworded_rows_hand_checked():
    rows = _rows_until("is there a red shape?", "yes", want_negation=True)
    assert rows[0]["answer"] == "yes" and rows[0]["category"] in CATEGORIES[:-1]
    assert rows[0]["question"] in ROBUST_GRAMMAR.renderings(
        F("color_presence", color="red"), rows[0]["category"]
    )
    assert rows[1]["category"] == NEGATION_CATEGORY and rows[1]["answer"] == "no"  # negation flips yes/no
    negated = F("color_presence", color="red", negated=True)
    assert rows[1]["question"] in ROBUST_GRAMMAR.renderings(negated, NEGATION_CATEGORY)

    rows = _rows_until("does the image not contain a circle?", "no", want_negation=True)
    assert [row["answer"] for row in rows] == ["no", "no"]  # already negated: the answer stays

    for question, answer in (
        ("what color is the triangle?", "teal"),
        ("what shape is in the image?", "circle"),
    ):
        rows = _rows_until(question, answer, want_negation=False)
        assert len(rows) == 1 and rows[0]["answer"] == answer  # colour and shape answers unchanged
        assert rows[0]["question"] != question


def test_reworded_rows_are_deterministic_and_seeded():
    args = ("is there not a circle in the image?", "yes")
    same = [reworded_rows(*args, f"test-q{i}", seed=3) for i in range(30)]
    assert same == [reworded_rows(*args, f"test-q{i}", seed=3) for i in range(30)]
    assert same != [reworded_rows(*args, f"test-q{i}", seed=4) for i in range(30)]


def test_imperative_and_polite_forms_keep_the_answer():
    found = set()
    for index in range(100):
        row = reworded_rows("what color is the circle?", "green", f"test-q{index}", seed=0)[0]
        found.add(row["category"])
        assert row["answer"] == "green"
    assert {"imperative", "polite"} <= found


def test_paraphrases_follow_the_flip_rule_and_stay_in_their_grammar():
    question, answer = "is there a blue shape?", "yes"
    frame = parse_question(question)
    seen_answers = set()
    for index in range(60):
        new_question, new_answer, paraphrased = paraphrase_question(
            question, answer, f"train-q{index}", seed=0, paraphrase_prob=1.0
        )
        assert paraphrased
        negated = new_question in PARAPHRASE_GRAMMAR.renderings(frame.with_negation(True))
        assert negated or new_question in PARAPHRASE_GRAMMAR.renderings(frame)
        assert new_answer == ("no" if negated else "yes")
        seen_answers.add(new_answer)
    assert seen_answers == {"yes", "no"}
    assert paraphrase_question(question, answer, "train-q1", seed=0, paraphrase_prob=0.0) == (
        question,
        answer,
        False,
    )
    shape = paraphrase_question("what is the red shape?", "triangle", "train-q2", seed=0, paraphrase_prob=1.0)
    assert shape[1] == "triangle" and shape[0] in PARAPHRASE_GRAMMAR.renderings(F("shape", color="red"))


def _facts(shape: str, color: str) -> ImageFacts:
    facts = ImageFacts(0)
    facts.add("what shape is in the image?", shape)
    facts.add("what color is the shape?", color)
    return facts


def test_balancing_asks_about_present_and_absent_values_with_answers_from_the_facts():
    red_circle = _facts("circle", "red")
    seen = {}
    for index in range(200):
        for question, answer in [
            ("is there a blue shape?", "no"),
            ("does the image not contain a triangle?", "yes"),
            ("is no green shape present?", "yes"),
        ]:
            new_question, new_answer = balance_presence_question(
                question, answer, f"train-q{index}", red_circle, seed=0
            )
            frame = parse_question(new_question)
            assert frame.negated == parse_question(question).negated  # the wording's negation is kept
            present = (frame.color or frame.shape) in ("red", "circle")
            assert new_answer == ("yes" if present != frame.negated else "no"), (new_question, new_answer)
            seen.setdefault(question, []).append(present)
    for question, presents in seen.items():  # about half the re-asked questions are about the image's value
        assert 0.35 < sum(presents) / len(presents) < 0.65, question
    # Non-presence questions, and facts that do not settle the asked attribute, are left alone.
    assert balance_presence_question("what color is the shape?", "red", "q", red_circle, seed=0) == (
        "what color is the shape?",
        "red",
    )
    unknown_color = ImageFacts(1)
    unknown_color.add("what shape is in the image?", "circle")
    assert balance_presence_question("is there a blue shape?", "no", "q", unknown_color, seed=0) == (
        "is there a blue shape?",
        "no",
    )


def test_splits_are_refused_with_a_clear_error():
    with pytest.raises(ValueError, match="test split only.*easyvqa-paraphrased"):
        load_easyvqa_reworded("train")
    with pytest.raises(ValueError, match="training augmentation.*easyvqa-reworded"):
        load_easyvqa_paraphrased("test")
    with pytest.raises(ValueError, match="paraphrase_prob must be in"):
        load_easyvqa_paraphrased("train", paraphrase_prob=1.5)


@pytest.mark.bundled
def test_all_easyvqa_questions_parse_and_are_never_reproduced(easyvqa_questions):
    assert len(easyvqa_questions) == 107
    frames = {parse_question(question) for question in easyvqa_questions}
    assert frames == set(all_frames())
    for frame in all_frames():
        assert not ROBUST_GRAMMAR.renderings(frame) & set(easyvqa_questions)
        assert not PARAPHRASE_GRAMMAR.renderings(frame) & set(easyvqa_questions)


# Rows of the seed-0 set, read and checked by hand against the original question and answer.
HAND_CHECKED = {
    "test-q1-word_order": ("the triangle is what color?", "red"),  # "what is the color of the triangle?" red
    "test-q7-polite": ("can you see a blue shape?", "no"),  # "is there a blue shape in the image?" no
    "test-q45-imperative": ("name the shape in the image.", "circle"),  # "what shape does the image contain?"
    "test-q18-synonyms": ("what is the form of the blue shape?", "triangle"),  # "what is the blue shape?"
    "test-q4-figure": (
        "is the figure in the picture not black?",
        "yes",
    ),  # "is there not a black shape ...?" yes
    "test-q20-negation": (
        "is the shape something other than a rectangle?",
        "yes",
    ),  # "is there a rectangle?" no
    "test-q97-negation": (
        "is the shape some color other than green?",
        "yes",
    ),  # "does ... contain a green shape?" no
    "test-q12-negation": (
        "is the image without a circle?",
        "yes",
    ),  # "is there not a circle in the image?" yes
    "test-q41-word_order": (
        "in the image, is there not a yellow shape?",
        "no",
    ),  # "does ... not contain ...?" no
}


@pytest.mark.bundled
def test_reworded_set_labels_counts_and_determinism():
    from vljepa.data import load_vl_dataset, validate_dataset

    dataset = load_vl_dataset("easyvqa-reworded", split="test")
    validate_dataset(dataset, "vqa", check_rows=300)
    rows = dataset.remove_columns("image")
    counts = {category: rows["category"].count(category) for category in CATEGORIES}
    assert len(rows) == sum(counts.values()) == 11_676  # the module docstring's figures
    assert min(counts.values()) == 1_888 and counts[NEGATION_CATEGORY] == 2_003, counts
    by_question_id = {row["question_id"]: row for row in rows}
    for question_id, (question, answer) in HAND_CHECKED.items():
        assert (by_question_id[question_id]["question"], by_question_id[question_id]["answers"]) == (
            question,
            [answer],
        )
    assert len(set(rows["question_id"])) == len(rows)
    flipped = 0
    for row in rows:
        assert len(row["candidates"]) == 13 and row["answers"][0] in row["candidates"]
        frame = parse_question(row["original_question"])
        negated = row["category"] == NEGATION_CATEGORY or frame.negated
        expected = reworded_answer(frame, row["original_answer"], negated=negated)
        assert row["answers"] == [expected], row
        flipped += expected != row["original_answer"]
        if not frame.is_presence:
            assert row["answers"] == [row["original_answer"]]
        asked = frame.with_negation(negated) if frame.is_presence else frame
        assert row["question"] in ROBUST_GRAMMAR.renderings(asked, row["category"]), row
    assert flipped == sum(
        1
        for row in rows
        if row["category"] == NEGATION_CATEGORY and not parse_question(row["original_question"]).negated
    )
    original = load_vl_dataset("easyvqa", split="test").remove_columns("image")
    by_id = {
        qid: (qtype, image)
        for qid, qtype, image in zip(original["question_id"], original["question_type"], original["image_id"])
    }
    for row in rows.select(range(0, len(rows), 7)):
        assert (row["question_type"], row["image_id"]) == by_id[row["original_question_id"]]
    rebuilt = load_easyvqa_reworded("test", use_cache=False)
    assert rebuilt["question"] == rows["question"] and rebuilt["answers"] == rows["answers"]
    assert load_easyvqa_reworded("test", seed=1, use_cache=False)["question"] != rows["question"]


@pytest.mark.bundled
def test_paraphrased_training_set_keeps_rows_and_never_uses_robust_wordings():
    from vljepa.data import load_vl_dataset, validate_dataset

    train = load_vl_dataset("easyvqa-paraphrased", split="train", paraphrase_prob=0.5)
    validate_dataset(train, "vqa", check_rows=200)
    rows = train.remove_columns("image")
    original = load_vl_dataset("easyvqa", split="train").remove_columns("image")
    assert len(rows) == len(original) and rows["question_id"] == original["question_id"]
    share = sum(rows["paraphrased"]) / len(rows)
    assert 0.48 < share < 0.52
    assert len(set(rows["question"])) <= 3000
    robust = set().union(*(ROBUST_GRAMMAR.renderings(frame) for frame in all_frames()))
    assert not set(rows["question"]) & robust
    for row in rows.select(range(0, len(rows), 11)):
        if not row["paraphrased"]:
            assert (row["question"], row["answers"]) == (row["original_question"], [row["original_answer"]])
        elif parse_question(row["original_question"]).is_presence:
            assert row["answers"][0] in ("yes", "no")
        else:
            assert row["answers"] == [row["original_answer"]]
    assert not any(load_easyvqa_paraphrased("train", paraphrase_prob=0.0, use_cache=False)["paraphrased"])


@pytest.mark.bundled
def test_balanced_training_set_answers_each_wording_yes_and_no_equally():
    from collections import Counter

    from vljepa.data.easyvqa import image_facts

    rows = load_easyvqa_paraphrased("train", paraphrase_prob=0.5, balance_presence=True).remove_columns("image")
    facts = image_facts("train")
    by_negation: Counter = Counter()
    for row in rows.select(range(0, len(rows), 5)):
        if row["answers"][0] not in ("yes", "no"):
            continue
        if not row["paraphrased"]:  # the original wording, asked about the value the row names
            frame = parse_question(row["question"])
            image = facts[int(row["image_id"].rsplit("-", 1)[1])]
            present = (frame.color or frame.shape) in (image.color, image.shape)
            assert row["answers"] == ["yes" if present != frame.negated else "no"], row
            by_negation[frame.negated, row["answers"][0]] += 1
    for negated in (False, True):  # easy-VQA's own wordings are 82 % "no" (plain) or "yes" (negated)
        yes, no = by_negation[negated, "yes"], by_negation[negated, "no"]
        assert 0.4 < yes / (yes + no) < 0.6, by_negation
