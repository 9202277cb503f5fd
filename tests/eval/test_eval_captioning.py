"""CIDEr-D and BLEU-4 against hand-computed values; tokenisation; input checks."""

from __future__ import annotations

import math

import pytest

from eval.captioning import bleu4, cider, cider_scores, tokenize_caption


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("A Cat, on the MAT.", "a cat on the mat"),
        ("the dog's bowl", "the dog 's bowl"),
        ("it don't fit", "it do n't fit"),
        ("two-tone car!", "two tone car"),
        ("  spaced\tout  ", "spaced out"),
        ("\u2018quoted\u2019 word", "quoted word"),
    ],
)
def test_tokenize_caption(raw, expected):
    assert tokenize_caption(raw) == expected


def test_cider_one_word_captions_by_hand():
    # Document frequency over the 2 images' references: cat 1, dog 2 -> idf(cat) = log 2, idf(dog) = 0.
    # Image A: unigram cosine with "cat" = 1, with "dog" = 0; n = 2..4 contribute 0 -> mean over n = 1/4,
    # over 2 references -> 1/8, x10 -> 1.25. Image B: its only n-gram has idf 0 -> 0.
    candidates = {"A": "cat", "B": "Dog."}
    references = {"A": ["cat", "dog"], "B": ["dog"]}
    per_example = cider_scores(candidates, references)
    assert per_example["A"] == pytest.approx(1.25)
    assert per_example["B"] == pytest.approx(0.0)
    assert cider(candidates, references) == pytest.approx(0.625)


def test_cider_clipping_and_length_penalty_by_hand():
    # Image A: candidate "cat cat" vs reference "cat", w = idf(cat) = log 2.
    # unigrams: candidate {cat: 2w}, reference {cat: w}; clipped dot = min(2w, w) * w = w^2, norms 2w and w
    #   -> 0.5 (without clipping it would be 1).
    # length (the scorer counts bigrams): 1 vs 0 -> penalty exp(-1 / (2 * 6^2)).
    # bigram (cat, cat) absent from the reference -> 0.  CIDEr-D(A) = 10 * 0.5 * penalty / 4.
    # Image B: exact one-word match with idf log 2 -> 10 * 1 / 4 = 2.5.
    candidates = {"A": "cat cat", "B": "zebra"}
    references = {"A": ["cat"], "B": ["zebra"]}
    penalty = math.exp(-1 / 72)
    per_example = cider_scores(candidates, references)
    assert per_example["A"] == pytest.approx(1.25 * penalty)
    assert per_example["B"] == pytest.approx(2.5)
    assert cider(candidates, references) == pytest.approx((1.25 * penalty + 2.5) / 2)


def test_cider_rewards_a_better_caption():
    references = {
        1: ["a man riding a horse on a beach", "a person rides a horse by the sea"],
        2: ["a plate of food with broccoli", "a dish with vegetables on a table"],
        3: ["a cat sleeping on a sofa", "a cat lying on a couch"],
    }
    good = {
        1: "a man riding a horse on the beach",
        2: "a plate of food with broccoli",
        3: "a cat sleeping on a couch",
    }
    bad = {1: "a plate of food", 2: "a cat on a sofa", 3: "a man on a horse"}
    assert cider(good, references) > 1.0 > cider(bad, references)


def test_bleu4_by_hand():
    # Precisions 5/6, 3/5, 2/4, 1/3, equal lengths (no brevity penalty): BLEU = (1/12)^(1/4).
    score = bleu4({0: "the cat sat on the mat"}, {0: ["the cat sat on a mat"]})
    assert score == pytest.approx((1 / 12) ** 0.25, rel=1e-6)


def test_bleu4_exact_match_with_a_variable_number_of_references():
    candidates = {1: "a man riding a horse", 2: "a plate of food on a table"}
    references = {
        1: ["a man riding a horse"],
        2: ["something else entirely", "a plate of food on a table", "x"],
    }
    assert bleu4(candidates, references) == pytest.approx(1.0)
    assert bleu4({1: "a b c d"}, {1: ["e f g h"]}) == 0.0


@pytest.mark.parametrize("metric", [cider, bleu4])
def test_mismatched_keys_and_types_are_rejected(metric):
    with pytest.raises(ValueError, match="same example ids"):
        metric({1: "a cat"}, {2: ["a cat"]})
    with pytest.raises(TypeError, match="non-empty list"):
        metric({1: "a cat"}, {1: "a cat"})
    with pytest.raises(TypeError, match="one caption string"):
        metric({1: ["a cat"]}, {1: ["a cat"]})
    with pytest.raises(ValueError, match="empty"):
        metric({}, {})
