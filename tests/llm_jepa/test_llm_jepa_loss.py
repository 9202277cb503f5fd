"""LLM-JEPA loss terms against their direct formulas."""

import math

import pytest
import torch

from llm_jepa.loss import causal_lm_loss, jepa_distance, lm_loss_positions


@pytest.fixture
def pair():
    generator = torch.Generator().manual_seed(0)
    return torch.randn(5, 16, generator=generator), torch.randn(5, 16, generator=generator)


def _cosine(p, t):
    return sum(1 - float(p[i] @ t[i]) / (float(p[i].norm()) * float(t[i].norm())) for i in range(len(p))) / len(p)


def _l2(p, t):
    return sum(math.sqrt(sum((float(a) - float(b)) ** 2 for a, b in zip(p[i], t[i]))) for i in range(len(p))) / len(p)


def _mse(p, t):
    return float(((p - t) ** 2).sum()) / p.numel()


def _infonce(p, t, temperature=0.07):
    total = 0.0
    for i in range(len(p)):
        sims = [float(p[i] @ t[j]) / (float(p[i].norm()) * float(t[j].norm())) / temperature for j in range(len(t))]
        log_z = math.log(sum(math.exp(s) for s in sims))
        total += log_z - sims[i]
    return total / len(p)


@pytest.mark.parametrize(
    "kind, formula", [("cosine", _cosine), ("l2", _l2), ("mse", _mse), ("infonce", _infonce)]
)
def test_distance_matches_direct_formula(pair, kind, formula):
    prediction, target = pair
    assert jepa_distance(prediction, target, kind).item() == pytest.approx(formula(prediction, target), rel=1e-5)


@pytest.mark.parametrize("kind", ["cosine", "l2", "mse"])
def test_distance_is_zero_for_identical_views(pair, kind):
    prediction, _ = pair
    assert jepa_distance(prediction, prediction.clone(), kind).item() == pytest.approx(0.0, abs=1e-5)


def test_cosine_ignores_scale_but_l2_does_not(pair):
    prediction, target = pair
    assert jepa_distance(3 * prediction, target, "cosine").item() == pytest.approx(
        jepa_distance(prediction, target, "cosine").item(), rel=1e-6
    )
    assert jepa_distance(3 * prediction, target, "l2").item() != pytest.approx(
        jepa_distance(prediction, target, "l2").item(), rel=1e-3
    )


def test_infonce_temperature_sharpens(pair):
    prediction, target = pair
    target = prediction + 0.1 * target  # matching pairs are the most similar
    cold = jepa_distance(prediction, target, "infonce", temperature=0.01).item()
    warm = jepa_distance(prediction, target, "infonce", temperature=1.0).item()
    assert cold < warm


def test_distance_rejects_bad_shapes_and_kinds(pair):
    prediction, target = pair
    with pytest.raises(ValueError, match="must both be"):
        jepa_distance(prediction, target[:3], "cosine")
    with pytest.raises(ValueError, match="unknown jepa_loss"):
        jepa_distance(prediction, target, "dot")


def test_causal_lm_loss_matches_shifted_cross_entropy():
    generator = torch.Generator().manual_seed(1)
    logits = torch.randn(2, 4, 7, generator=generator)
    labels = torch.tensor([[-100, 3, 5, -100], [-100, -100, 1, 2]])
    terms = []
    for b in range(2):
        for t in range(3):
            if labels[b, t + 1] != -100:
                terms.append(-torch.log_softmax(logits[b, t], -1)[labels[b, t + 1]])
    assert causal_lm_loss(logits, labels).item() == pytest.approx(torch.stack(terms).mean().item(), rel=1e-6)
    with pytest.raises(ValueError, match="no labelled"):
        causal_lm_loss(logits, torch.full_like(labels, -100))


def test_lm_loss_at_kept_positions_equals_the_full_loss():
    """Logits kept only where some row's next token is labelled give exactly the full-sequence loss."""
    torch.manual_seed(0)
    logits = torch.randn(3, 7, 11)
    labels = torch.full((3, 7), -100)
    labels[0, 3:5] = torch.tensor([1, 2])
    labels[1, 5:7] = torch.tensor([3, 4])
    labels[2, 4] = 5
    positions = lm_loss_positions(labels)
    assert positions.tolist() == [2, 3, 4, 5]  # position t predicts token t + 1
    full = causal_lm_loss(logits, labels)
    kept = causal_lm_loss(logits[:, positions], labels, positions)
    assert kept.item() == pytest.approx(full.item(), rel=1e-6)
    with pytest.raises(ValueError, match="no labelled"):
        lm_loss_positions(torch.full_like(labels, -100))
