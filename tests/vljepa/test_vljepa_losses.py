"""Losses: InfoNCE against its direct formula, de-duplicated targets, cross-process gathering, cosine/L2."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from vljepa.losses import EmbeddingLoss, gather_with_local_grad, info_nce, text_ids


def direct_info_nce(pred: torch.Tensor, target: torch.Tensor, scale: float) -> tuple[float, float]:
    """The CLIP loss written out with explicit sums (no library cross-entropy)."""
    p = pred / pred.norm(dim=1, keepdim=True)
    t = target / target.norm(dim=1, keepdim=True)
    sim = scale * p @ t.T
    n = sim.shape[0]
    p2t = -sum(sim[i, i] - torch.logsumexp(sim[i, :], 0) for i in range(n)) / n
    t2p = -sum(sim[i, i] - torch.logsumexp(sim[:, i], 0) for i in range(n)) / n
    return float(p2t), float(t2p)


def test_info_nce_equals_direct_formula():
    torch.manual_seed(0)
    pred, target = torch.randn(6, 5), torch.randn(6, 5)
    p2t, t2p, candidates = info_nce(pred, target, torch.tensor(7.0))
    expected = direct_info_nce(pred, target, 7.0)
    assert candidates == 6
    assert p2t.item() == pytest.approx(expected[0], rel=1e-5)
    assert t2p.item() == pytest.approx(expected[1], rel=1e-5)
    # distinct ids give exactly the same loss as no ids, in any id order
    ids = torch.tensor([50, 3, 9, -4, 11, 0])
    p2t_ids, t2p_ids, _ = info_nce(pred, target, torch.tensor(7.0), ids)
    assert p2t_ids.item() == pytest.approx(p2t.item(), rel=1e-5)
    assert t2p_ids.item() == pytest.approx(t2p.item(), rel=1e-5)


def test_duplicate_targets_are_one_class_not_negatives():
    torch.manual_seed(0)
    pred = torch.randn(4, 8)
    target = torch.randn(3, 8)[[0, 1, 0, 2]]  # rows 0 and 2 share a target text
    ids = torch.tensor([7, 8, 7, 9])
    p2t, t2p, candidates = info_nce(pred, target, torch.tensor(5.0), ids)
    assert candidates == 3
    p = F.normalize(pred, dim=1)
    u = F.normalize(target[[0, 1, 3]], dim=1)
    sim = 5.0 * p @ u.T
    labels = [0, 1, 0, 2]
    expected_p2t = -sum(sim[i, labels[i]] - torch.logsumexp(sim[i], 0) for i in range(4)) / 4
    column_log_probs = sim.T - torch.logsumexp(sim.T, dim=1, keepdim=True)  # each target over predictions
    expected_t2p = -(
        (column_log_probs[0, 0] + column_log_probs[0, 2]) / 2 + column_log_probs[1, 1] + column_log_probs[2, 3]
    ) / 3
    assert p2t.item() == pytest.approx(float(expected_p2t), rel=1e-5)
    assert t2p.item() == pytest.approx(float(expected_t2p), rel=1e-5)


def test_text_ids_are_stable_and_equal_for_equal_texts():
    ids = text_ids(["yes", "no", "yes"])
    assert ids.dtype == torch.long and ids[0] == ids[2] and ids[0] != ids[1]
    assert torch.equal(ids, text_ids(["yes", "no", "yes"]))


def test_gather_with_local_grad_flows_only_to_the_local_shard():
    local = torch.randn(2, 3, requires_grad=True)
    other = torch.randn(2, 3)

    def fake_gather(tensor):  # two processes; this one is rank 1
        return torch.cat([other, tensor])

    gathered = gather_with_local_grad(local, fake_gather, rank=1)
    assert torch.equal(gathered[:2], other) and torch.equal(gathered[2:], local)
    gathered.sum().backward()
    assert torch.equal(local.grad, torch.ones(2, 3))
    with pytest.raises(ValueError, match="same per-device batch size"):
        gather_with_local_grad(torch.randn(3, 3), lambda t: torch.randn(4, 3), rank=0)


def test_distributed_loss_uses_global_negatives():
    torch.manual_seed(0)
    pred, target = torch.randn(4, 6), torch.randn(4, 6)
    global_loss = EmbeddingLoss()(pred, target)
    # rank 0 holds rows 0-1; the gather returns all four rows
    shard = EmbeddingLoss()
    other_rank_rows = iter([pred[2:], target[2:]])  # gathered in this order: predictions, then targets
    local_loss = shard(pred[:2], target[:2], gather_fn=lambda tensor: torch.cat([tensor, next(other_rank_rows)]),
                       rank=0)
    assert local_loss.num_candidates == 4
    assert local_loss.loss.item() == pytest.approx(global_loss.loss.item(), rel=1e-5)


@pytest.mark.parametrize("with_duplicate_targets", [False, True])
def test_ddp_average_of_rank_gradients_equals_the_global_gradient(with_duplicate_targets):
    """Two simulated ranks (2 rows each) whose gradients are averaged, as DDP does, match one process."""
    torch.manual_seed(0)
    pred, target = torch.randn(4, 6), torch.randn(4, 6)
    ids = text_ids(["a", "b", "a", "c"] if with_duplicate_targets else ["a", "b", "c", "d"])

    def run(rank: int | None):
        p, t = pred.clone().requires_grad_(), target.clone().requires_grad_()
        loss_fn = EmbeddingLoss()
        rows = slice(None) if rank is None else slice(2 * rank, 2 * rank + 2)
        gather = None
        if rank is not None:
            everything = iter([pred, target, ids])  # gathered in this order

            def gather(tensor):
                full = next(everything).clone()
                full[rows] = tensor
                return full

        out = loss_fn(p[rows], t[rows], ids[rows], gather_fn=gather, rank=rank or 0)
        out.loss.backward()
        return out.loss.detach(), p.grad, t.grad, loss_fn.log_logit_scale.grad

    single = run(None)
    ranks = [run(0), run(1)]
    for rank in ranks:
        torch.testing.assert_close(rank[0], single[0])  # every rank reports the global loss
    for i in (1, 2, 3):
        torch.testing.assert_close((ranks[0][i] + ranks[1][i]) / 2, single[i], rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize(("loss_type", "expected"), [("cosine", "cosine_distance"), ("l2", "l2")])
def test_cosine_and_l2(loss_type, expected):
    pred = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    target = torch.tensor([[1.0, 0.0], [2.0, 0.0]])
    out = EmbeddingLoss(loss_type=loss_type)(pred, target)
    direct = {"cosine_distance": (0.0 + 1.0) / 2, "l2": (0.0 + 8.0) / 4}[expected]
    assert out.loss.item() == pytest.approx(direct)
    assert getattr(out, expected).item() == pytest.approx(direct)
    assert out.prediction_to_target is None and out.temperature is None


def test_temperature_is_learnable_and_clamped():
    loss = EmbeddingLoss(initial_temperature=0.05, max_logit_scale=10.0)
    assert loss.log_logit_scale.requires_grad
    assert loss.logit_scale.item() == pytest.approx(10.0)  # 1/0.05 = 20 clamped to 10
    assert EmbeddingLoss(initial_temperature=0.5).logit_scale.item() == pytest.approx(2.0)
    assert not EmbeddingLoss(learnable_temperature=False).log_logit_scale.requires_grad
    assert math.isclose(EmbeddingLoss(initial_temperature=0.5)(torch.randn(3, 4), torch.randn(3, 4)).temperature.item(),
                        0.5, rel_tol=1e-5)


def test_temperature_is_one_element_and_loads_from_older_scalar_checkpoints():
    """FSDP2 refuses 0-d parameters, so the temperature is shape [1]; weights saved when it was a scalar load."""
    loss = EmbeddingLoss(initial_temperature=0.05)
    assert loss.log_logit_scale.shape == (1,) and loss.logit_scale.dim() == 0
    loss.load_state_dict({"log_logit_scale": torch.tensor(2.5)})
    assert loss.log_logit_scale.shape == (1,) and loss.log_logit_scale.item() == 2.5
