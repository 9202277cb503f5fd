"""eval/paired_stats.py against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from eval.paired_stats import (
    discordant_counts,
    mcnemar_exact,
    paired_bootstrap_ci,
    paired_example_stats,
)


@pytest.mark.parametrize(
    ("b", "c", "p"),
    [
        # n = 12: P(X <= 2) = (1 + 12 + 66) / 4096 = 79 / 4096; two-sided 158 / 4096
        (10, 2, 158 / 4096),
        (2, 10, 158 / 4096),
        # n = 5: P(X <= 0) = 1/32 -> 2/32
        (0, 5, 2 / 32),
        (3, 3, 1.0),  # P(X <= 3) of n = 6 is 42/64 > 1/2: capped at 1
        (0, 0, 1.0),  # no discordant pair: no evidence either way
        (1, 0, 1.0),
    ],
)
def test_mcnemar_exact_hand_values(b, c, p):
    assert mcnemar_exact(b, c) == pytest.approx(p, rel=1e-12)


def test_mcnemar_matches_scipy_binomial_test():
    from scipy.stats import binomtest

    for b, c in ((10, 2), (7, 19), (40, 25), (1, 9)):
        assert mcnemar_exact(b, c) == pytest.approx(binomtest(b, b + c, 0.5).pvalue, rel=1e-9)
    assert mcnemar_exact(10, 2) == pytest.approx(0.0386, abs=5e-5)


def test_discordant_counts_pool_over_seeds():
    baseline = [[1, 1, 0, 0, 1], [1, 0, 0, 1, 1]]
    treatment = [[1, 0, 1, 0, 1], [0, 1, 1, 1, 1]]
    assert discordant_counts(baseline, treatment) == {
        "both_correct": 4,
        "both_wrong": 1,
        "baseline_only": 2,  # seed 0 item 1, seed 1 item 0
        "treatment_only": 3,  # seed 0 item 2, seed 1 items 1 and 2
    }


@pytest.mark.parametrize(
    ("baseline", "treatment", "message"),
    [
        ([1, 0], [1, 0, 1], "pair up one to one"),
        ([1, 2], [1, 0], "0/1 outcomes"),
        ([], [], "no paired examples"),
    ],
)
def test_bad_inputs_are_refused(baseline, treatment, message):
    with pytest.raises(ValueError, match=message):
        paired_example_stats(baseline, treatment)


def test_bootstrap_two_items_matches_the_enumerated_distribution():
    # per-item differences [1, 0]: a resample's mean is 0, 1/2 or 1 with probability 1/4, 1/2, 1/4, so the
    # 2.5% and 97.5% quantiles of the bootstrap distribution are exactly 0 and 1.
    ci = paired_bootstrap_ci([0, 0], [1, 0], num_resamples=4000, seed=7)
    assert ci["difference"] == 0.5 and ci["low"] == 0.0 and ci["high"] == 1.0


def test_bootstrap_is_fixed_by_its_seed_and_resamples_items_with_all_seeds():
    rng = np.random.default_rng(3)
    baseline = rng.integers(0, 2, size=(3, 200))
    treatment = rng.integers(0, 2, size=(3, 200))
    first = paired_bootstrap_ci(baseline, treatment, seed=11, num_resamples=2000)
    assert paired_bootstrap_ci(baseline, treatment, seed=11, num_resamples=2000) == first
    assert paired_bootstrap_ci(baseline, treatment, seed=12, num_resamples=2000) != first
    # the same draws by hand: items resampled, every seed of a drawn item kept
    draws = np.random.default_rng(11).integers(0, 200, size=(2000, 200))
    per_item = (treatment - baseline).mean(axis=0)
    expected = np.quantile(per_item[draws].mean(axis=1), [0.025, 0.975])
    assert (first["low"], first["high"]) == pytest.approx(tuple(expected))
    assert first["low"] < first["difference"] < first["high"]
    assert first["difference"] == pytest.approx(treatment.mean() - baseline.mean())


def test_no_discordant_pairs():
    same = [[1, 0, 1, 1], [0, 0, 1, 1]]
    stats = paired_example_stats(same, same)
    assert stats["mcnemar_p"] == 1.0 and stats["baseline_only"] == stats["treatment_only"] == 0
    assert stats["bootstrap"]["low"] == stats["bootstrap"]["high"] == stats["bootstrap"]["difference"] == 0.0
    assert stats["num_pairs"] == 8 and stats["baseline_accuracy"] == stats["llm_jepa_accuracy"] == 0.625


def test_every_pair_favours_the_treatment():
    stats = paired_example_stats([0] * 12, [1] * 12)
    assert stats["treatment_only"] == 12
    assert stats["mcnemar_p"] == pytest.approx(2 / 2**12)
    assert stats["bootstrap"]["low"] == stats["bootstrap"]["high"] == 1.0
