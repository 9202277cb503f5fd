"""Recall@K: hand-computed multi-caption cases, ties, chunked == one-shot, input errors."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest
import torch

from eval.retrieval import recall_at_k, retrieval_ranks

# Unit-norm captions over one-hot images, so similarity[j, i] = CAPTIONS[j][i].
IMAGES = np.eye(3)
CAPTIONS = np.array(
    [
        [0.6, 0.8, 0.0],  # -> image 0; image 1 scores higher  -> t2i rank 1
        [0.8, 0.0, 0.6],  # -> image 0                         -> t2i rank 0
        [0.0, 0.6, 0.8],  # -> image 1; image 2 scores higher  -> t2i rank 1
        [0.0, 0.0, 1.0],  # -> image 2                         -> t2i rank 0
        [0.6, 0.0, 0.8],  # -> image 2                         -> t2i rank 0
    ]
)
CAPTION_IMAGE = [0, 0, 1, 2, 2]
# i2t: image 0's best caption (0.8) beats every negative -> 0; image 1's only caption (0.6) is beaten by
# caption 0 (0.8) -> 1; image 2's best caption (1.0) -> 0.


def naive_ranks(images: np.ndarray, texts: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Reference: the full similarity matrix, rank = #negatives at or above the (best) positive - 1e-5."""
    images = images / np.linalg.norm(images, axis=1, keepdims=True)
    texts = texts / np.linalg.norm(texts, axis=1, keepdims=True)
    sims = texts @ images.T  # [M, N]
    t2i = np.array(
        [
            sum(sims[j, i] > sims[j, ids[j]] for i in range(len(images)) if i != ids[j])
            for j in range(len(texts))
        ]
    )
    i2t = []
    for i in range(len(images)):
        positives = np.flatnonzero(ids == i)
        if positives.size == 0:
            i2t.append(-1)
            continue
        best = sims[positives, i].max()
        i2t.append(sum(sims[j, i] >= best - 1e-5 for j in range(len(texts)) if ids[j] != i))
    return np.array(i2t), t2i


def test_hand_computed_multi_caption_case():
    metrics = recall_at_k(IMAGES, CAPTIONS, CAPTION_IMAGE, ks=(1, 2))
    assert list(metrics) == ["i2t_r1", "i2t_r2", "t2i_r1", "t2i_r2"]
    assert metrics["i2t_r1"] == pytest.approx(2 / 3)
    assert metrics["i2t_r2"] == 1.0
    assert metrics["t2i_r1"] == pytest.approx(3 / 5)
    assert metrics["t2i_r2"] == 1.0
    ranks = retrieval_ranks(IMAGES, CAPTIONS, CAPTION_IMAGE)
    assert ranks.i2t_rank.tolist() == [0, 1, 0]
    assert ranks.t2i_rank.tolist() == [1, 0, 1, 0, 0]


def test_default_keys_and_any_caption_counts_for_image_to_text():
    # Image 0 has a bad caption and a good one: the good one alone makes it a hit at 1.
    images = np.eye(2)
    texts = np.array([[0.6, 0.8], [1.0, 0.0], [0.0, 1.0]])
    metrics = recall_at_k(images, texts, [0, 0, 1])
    assert set(metrics) == {f"{d}_r{k}" for d in ("i2t", "t2i") for k in (1, 5, 10)}
    assert metrics["i2t_r1"] == 1.0
    assert metrics["t2i_r1"] == pytest.approx(2 / 3)


def test_ties_count_against_the_model():
    diagonal = np.array([1.0, 1.0]) / math.sqrt(2.0)
    # Both captions are the same vector, which scores exactly the same with both images.
    ranks = retrieval_ranks(np.eye(2), np.stack([diagonal, diagonal]), [0, 1])
    assert ranks.t2i_rank.tolist() == [1, 1]
    assert ranks.i2t_rank.tolist() == [1, 1]
    # A collapsed model (every embedding equal) ties everything and gets recall 0, not 1.
    collapsed = recall_at_k(np.ones((4, 3)), np.ones((6, 3)), [0, 1, 2, 3, 0, 1], ks=(1, 4))
    assert collapsed["i2t_r1"] == 0.0 and collapsed["t2i_r1"] == 0.0
    assert collapsed["t2i_r4"] == 1.0  # 3 tied negatives: rank 3 < 4


def test_a_better_or_tied_negative_lowers_the_rank():
    images = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])  # images 0 and 2 identical
    texts = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    ranks = retrieval_ranks(images, texts, [0, 1, 2])
    # caption 0: image 2 ties with image 0 -> 1; caption 2: image 1 (0.8) beats and image 0 ties its 0.6 -> 2.
    assert ranks.t2i_rank.tolist() == [1, 0, 2]


@pytest.mark.parametrize(
    ("gap", "tolerance", "expected_rank"),
    [(2e-5, 1e-5, 0), (5e-6, 1e-5, 1), (5e-6, 0.0, 0), (0.0, 0.0, 1)],
)
def test_tie_tolerance(gap, tolerance, expected_rank):
    # The caption's own image scores 1 / |c|; the other image (1 - gap) / |c|.
    caption = np.array([[1.0, 1.0 - gap]])
    ranks = retrieval_ranks(np.eye(2), caption, [0], tie_tolerance=tolerance)
    assert ranks.t2i_rank.tolist() == [expected_rank]


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 7, 10_000])
def test_chunked_equals_one_shot_and_naive(chunk_size):
    rng = np.random.default_rng(0)
    images = rng.standard_normal((13, 6))
    ids = rng.integers(0, 12, size=31)  # image 12 gets no caption
    texts = images[ids] + 1.5 * rng.standard_normal((31, 6))
    one_shot = retrieval_ranks(images, texts, ids, chunk_size=10_000, top_k=4)
    chunked = retrieval_ranks(images, texts, ids, chunk_size=chunk_size, top_k=4)
    assert torch.equal(one_shot.i2t_rank, chunked.i2t_rank)
    assert torch.equal(one_shot.t2i_rank, chunked.t2i_rank)
    assert torch.equal(one_shot.i2t_top, chunked.i2t_top)
    assert torch.equal(one_shot.t2i_top, chunked.t2i_top)
    i2t, t2i = naive_ranks(images, texts, ids)
    assert chunked.i2t_rank.tolist() == i2t.tolist()
    assert chunked.t2i_rank.tolist() == t2i.tolist()
    assert recall_at_k(images, texts, ids, chunk_size=chunk_size) == recall_at_k(
        images, texts, ids, chunk_size=10_000
    )


def test_top_indices_follow_the_full_similarity_matrix():
    rng = np.random.default_rng(1)
    images, texts = rng.standard_normal((9, 5)), rng.standard_normal((20, 5))
    ids = np.arange(20) % 9
    ranks = retrieval_ranks(images, texts, ids, chunk_size=4, top_k=3)
    sims = (texts / np.linalg.norm(texts, axis=1, keepdims=True)) @ (
        images / np.linalg.norm(images, axis=1, keepdims=True)
    ).T
    assert ranks.t2i_top.tolist() == np.argsort(-sims, axis=1)[:, :3].tolist()
    assert ranks.i2t_top.tolist() == np.argsort(-sims.T, axis=1)[:, :3].tolist()
    assert retrieval_ranks(images, texts, ids, top_k=50).t2i_top.shape == (20, 9)


def test_embeddings_are_normalised_and_tensors_accepted():
    scaled = recall_at_k(
        torch.tensor(IMAGES * 7.0), torch.tensor(CAPTIONS * 0.1), torch.tensor(CAPTION_IMAGE)
    )
    assert scaled == recall_at_k(IMAGES, CAPTIONS, CAPTION_IMAGE)


def test_images_without_captions_are_left_out_of_image_to_text(caplog):
    images = np.eye(3)
    texts = np.eye(3)[:2]
    with caplog.at_level(logging.WARNING):
        metrics = recall_at_k(images, texts, [0, 1], ks=(1,))
    assert metrics == {"i2t_r1": 1.0, "t2i_r1": 1.0}
    assert "1 image(s) have no caption" in caplog.text
    assert retrieval_ranks(images, texts, [0, 1]).i2t_rank.tolist() == [0, 0, -1]


@pytest.mark.parametrize(
    ("images", "texts", "ids", "message"),
    [
        (np.eye(2), np.eye(2), [0], "text_image_ids has 1 entries"),
        (np.eye(2), np.eye(2), [0, 2], r"text_image_ids\[1\] = 2 is not a row"),
        (np.eye(2), np.eye(3)[:2], [0, 1], "dimension 2 but text_emb has 3"),
        (np.array([[np.nan, 0.0]]), np.eye(2)[:1], [0], "NaN"),
        (np.zeros((0, 2)), np.eye(2), [0, 0], "image_emb is empty"),
    ],
)
def test_bad_inputs_raise_clear_errors(images, texts, ids, message):
    with pytest.raises(ValueError, match=message):
        recall_at_k(images, texts, ids)


def test_bad_ks_and_chunk_size():
    with pytest.raises(ValueError, match="ks must be"):
        recall_at_k(IMAGES, CAPTIONS, CAPTION_IMAGE, ks=(0,))
    with pytest.raises(ValueError, match="chunk_size"):
        recall_at_k(IMAGES, CAPTIONS, CAPTION_IMAGE, chunk_size=0)


@pytest.mark.parametrize("ids", [[0.0, 1.0, 1.5], np.array([0.0, 1.0, 1.0]), torch.tensor([0.0, 1.0, 1.0]),
                                 [True, False, True]], ids=["fraction", "numpy-float", "torch-float", "bool"])
def test_recall_at_k_refuses_non_integer_ids(ids):
    images, texts = np.eye(2, 4), np.eye(3, 4)
    with pytest.raises(TypeError, match="text_image_ids must be integer row indices"):
        recall_at_k(images, texts, ids, ks=(1,))
    assert recall_at_k(images, texts, [0, 1, 1], ks=(1,))  # integer ids of any container work
    assert recall_at_k(images, texts, torch.tensor([0, 1, 1]), ks=(1,))
