"""Collapse monitoring: RankMe, per-dimension std, pairwise cosine and the EmbeddingMonitor warning."""

from __future__ import annotations

import logging
import math

import pytest
import torch
import torch.nn.functional as F

from jepa_core.monitoring import (
    CollapseMonitorConfig,
    EmbeddingMonitor,
    embedding_statistics,
    mean_pairwise_cosine,
    per_dimension_std,
    rankme,
)

N, D = 512, 64


def _gaussian(seed: int = 0, n: int = N, d: int = D) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed))


def _rank_one(seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(N, 1, generator=generator) * torch.randn(1, D, generator=generator)


def _constant(seed: int = 0) -> torch.Tensor:
    return torch.ones(N, D) + 1e-4 * _gaussian(seed)


def test_rankme_matches_hand_computed_spectrum():
    # singular values (3, 1): p = (3/4, 1/4), effective rank = exp(-(3/4 ln 3/4 + 1/4 ln 1/4))
    matrix = torch.tensor([[3.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    expected = math.exp(-(0.75 * math.log(0.75) + 0.25 * math.log(0.25)))
    assert rankme(matrix, eps=1e-12) == pytest.approx(expected, rel=1e-6)
    assert rankme(torch.eye(5), eps=1e-12) == pytest.approx(5.0, rel=1e-6)  # flat spectrum: full rank
    assert rankme(torch.zeros(4, 3)) == 0.0


def test_rankme_is_invariant_to_scale_and_rotation():
    x = _gaussian(n=200, d=16)
    rotation, _ = torch.linalg.qr(_gaussian(seed=1, n=16, d=16))
    assert rankme(7.0 * x @ rotation) == pytest.approx(rankme(x), rel=1e-5)


def test_mean_pairwise_cosine_hand_computed_and_brute_force():
    # pairs: (a, b) = 0, (a, c) = (b, c) = 1/sqrt(2)
    vectors = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    assert mean_pairwise_cosine(vectors) == pytest.approx(2 / math.sqrt(2) / 3, rel=1e-6)
    x = _gaussian(n=40, d=8) + 0.5
    units = F.normalize(x, dim=-1)
    sims = units @ units.T
    brute = (sims.sum() - sims.diagonal().sum()) / (40 * 39)
    assert mean_pairwise_cosine(x) == pytest.approx(float(brute), abs=1e-6)


def test_per_dimension_std_of_normalised_embeddings():
    x = _gaussian(n=300, d=16) * 10.0
    expected = F.normalize(x, dim=-1).std(dim=0)
    torch.testing.assert_close(per_dimension_std(x), expected)
    # spread over the sphere: std is about 1/sqrt(D) in every dimension
    assert float(per_dimension_std(x).mean()) * 4.0 == pytest.approx(1.0, abs=0.1)


def test_gaussian_embeddings_are_healthy():
    stats = embedding_statistics(_gaussian())
    assert stats["rankme_fraction"] > 0.9
    assert stats["std_ratio"] == pytest.approx(1.0, abs=0.05)
    assert abs(stats["cosine_mean"]) < 0.01
    assert stats["num_vectors"] == N


def test_monitor_on_gaussian_batches_does_not_warn(caplog):
    monitor = EmbeddingMonitor("pred")
    with caplog.at_level(logging.WARNING, logger="jepa_core.monitoring"):
        for seed in range(8):  # small batches: the buffer accumulates 8 x 64 = 512 vectors
            monitor.update(_gaussian(seed, n=64))
            logs = monitor.compute()
    assert logs["pred/num_vectors"] == N
    assert logs["pred/rankme"] > 0.9 * D
    assert logs["pred/collapsed"] == 0.0
    assert all(key.startswith("pred/") for key in logs)
    assert not caplog.records


@pytest.mark.parametrize("make_collapsed", [_rank_one, _constant], ids=["rank_one", "constant"])
def test_monitor_warns_once_on_collapse(make_collapsed, caplog):
    monitor = EmbeddingMonitor("target")
    with caplog.at_level(logging.WARNING, logger="jepa_core.monitoring"):
        for seed in range(3):
            monitor.update(make_collapsed(seed))
            logs = monitor.compute()
            assert logs["target/collapsed"] == 1.0
    assert logs["target/rankme"] < 1.5
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "collapse" in warnings[0].getMessage() and "'target'" in warnings[0].getMessage()


def test_std_floor_alone_detects_collapse():
    # high rank but almost no spread: a constant vector plus tiny isotropic noise
    x = torch.ones(N, D) * 3.0 + 1e-3 * _gaussian()
    stats = embedding_statistics(x)
    monitor = EmbeddingMonitor("pred", config=CollapseMonitorConfig(min_rank_fraction=0.0))
    assert stats["std_ratio"] < 0.01
    assert monitor.is_collapsed(stats)


def test_no_verdict_before_min_vectors(caplog):
    monitor = EmbeddingMonitor("pred", config=CollapseMonitorConfig(min_vectors=256))
    with caplog.at_level(logging.WARNING, logger="jepa_core.monitoring"):
        monitor.update(_constant()[:100])
        logs = monitor.compute()
    assert logs["pred/collapsed"] == 0.0 and logs["pred/num_vectors"] == 100
    assert not caplog.records


def test_buffer_keeps_the_most_recent_vectors():
    monitor = EmbeddingMonitor("pred", config=CollapseMonitorConfig(buffer_size=100, min_vectors=50))
    batches = [_gaussian(seed, n=30, d=8) for seed in range(5)]
    for batch in batches:
        monitor.update(batch.reshape(3, 10, 8))  # [..., D] inputs are flattened
    assert monitor.num_vectors == 100
    expected = torch.cat(batches)[-100:]
    assert monitor.compute()["pred/rankme"] == pytest.approx(rankme(expected), rel=1e-6)
    assert EmbeddingMonitor("empty").compute() == {}


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"buffer_size": 1}, "buffer_size"),
        ({"buffer_size": 100, "min_vectors": 200}, "min_vectors"),
        ({"min_rank_fraction": 1.5}, "min_rank_fraction"),
        ({"min_std_ratio": -0.1}, "min_std_ratio"),
        ({"eps": 0.0}, "eps"),
    ],
)
def test_config_rejects_bad_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CollapseMonitorConfig(**kwargs)


def test_monitor_rejects_bad_input():
    monitor = EmbeddingMonitor("pred")
    monitor.update(torch.randn(4, 8))
    with pytest.raises(ValueError, match="changed from 8 to 9"):
        monitor.update(torch.randn(4, 9))
    with pytest.raises(ValueError, match=r"\[N, D\]"):
        monitor.update(torch.randn(8))
    with pytest.raises(ValueError, match="without '/'"):
        EmbeddingMonitor("pred/x")
