"""Paired statistics for comparing two models on the same test items (arrays in, numbers out).

Two levels of pairing, both used by ``llm-jepa compare``:

* **per example** (same seed, same test item, two arms): :func:`discordant_counts` and
  :func:`mcnemar_exact` on the discordant pairs pooled over seeds, and :func:`paired_bootstrap_ci` of the
  accuracy difference. With a few hundred test items per seed these can reach significance where
  seed-level tests cannot.
* **per seed** (one accuracy per run): :func:`mean_std`, :func:`paired_tests` (paired t-test and Wilcoxon
  signed-rank) and :func:`holm_correction` across metrics. With N seeds the smallest two-sided Wilcoxon
  p-value is 2/2^N (0.0625 for 5 seeds).

Pooling the discordant pairs over seeds treats every (seed, item) pair as one trial; the pairs of one item
under different seeds are not independent, so the McNemar p-value is optimistic when items are "easy" or
"hard" for both arms on every seed. The bootstrap resamples *items* (all seeds of an item together), which
keeps that correlation, so read the two together.

>>> mcnemar_exact(10, 2)   # 10 items only the baseline got right, 2 only the treatment
0.03857421875
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

DEFAULT_BOOTSTRAP_RESAMPLES = 10_000
DEFAULT_BOOTSTRAP_SEED = 0


def _binary_matrix(values: Any, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2:
        raise ValueError(f"{name} must be a (seeds, items) or (items,) array of 0/1 outcomes, got {array.shape}")
    if array.size and not np.isin(array, (0.0, 1.0)).all():
        raise ValueError(f"{name} must hold 0/1 outcomes (correct or not) per example")
    return array


def _paired(baseline: Any, treatment: Any) -> tuple[np.ndarray, np.ndarray]:
    base, treat = _binary_matrix(baseline, "baseline"), _binary_matrix(treatment, "treatment")
    if base.shape != treat.shape:
        raise ValueError(
            f"baseline and treatment outcomes must pair up one to one, got shapes {base.shape} and {treat.shape}"
        )
    if base.shape[1] == 0:
        raise ValueError("no paired examples")
    return base, treat


def discordant_counts(baseline: Any, treatment: Any) -> dict[str, int]:
    """Counts of the 2x2 paired table over every (seed, item) pair.

    Args:
        baseline, treatment: 0/1 outcomes, ``(items,)`` or ``(seeds, items)``, the same example at the
            same index in both.

    Returns:
        ``both_correct``, ``both_wrong``, ``baseline_only`` (b: baseline right, treatment wrong) and
        ``treatment_only`` (c: treatment right, baseline wrong).
    """
    base, treat = _paired(baseline, treatment)
    return {
        "both_correct": int(((base == 1) & (treat == 1)).sum()),
        "both_wrong": int(((base == 0) & (treat == 0)).sum()),
        "baseline_only": int(((base == 1) & (treat == 0)).sum()),
        "treatment_only": int(((base == 0) & (treat == 1)).sum()),
    }


def mcnemar_exact(baseline_only: int, treatment_only: int) -> float:
    """Two-sided exact McNemar p-value: a binomial test of ``b`` successes in ``b + c`` trials at p = 1/2.

    ``p = min(1, 2 * P(X <= min(b, c)))`` with ``X ~ Binomial(b + c, 1/2)``; 1.0 when there is no
    discordant pair (the arms never disagree, so there is no evidence either way).
    """
    b, c = int(baseline_only), int(treatment_only)
    if b < 0 or c < 0:
        raise ValueError(f"discordant counts must be >= 0, got b={b}, c={c}")
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(b, c) + 1)) / 2**n
    return min(1.0, 2.0 * tail)


def paired_bootstrap_ci(
    baseline: Any,
    treatment: Any,
    *,
    num_resamples: int = DEFAULT_BOOTSTRAP_RESAMPLES,
    confidence: float = 0.95,
    seed: int = DEFAULT_BOOTSTRAP_SEED,
) -> dict[str, float]:
    """Percentile bootstrap CI of ``mean(treatment) - mean(baseline)``, resampling test items.

    Each resample draws ``items`` item indices with replacement and keeps *every seed's* outcome of a drawn
    item (a cluster bootstrap over items, pooled over seeds), so the correlation between the seeds of one
    item stays in the interval. The draw uses ``numpy.random.default_rng(seed)``: the same inputs and seed
    give the same interval.

    Args:
        baseline, treatment: 0/1 outcomes, ``(items,)`` or ``(seeds, items)``, paired by index.
        num_resamples: bootstrap resamples.
        confidence: coverage of the two-sided interval.
        seed: seed of the resampling generator.

    Returns:
        ``difference`` (observed), ``low``, ``high``, ``confidence``, ``num_resamples``, ``seed``.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if num_resamples < 1:
        raise ValueError(f"num_resamples must be >= 1, got {num_resamples}")
    base, treat = _paired(baseline, treatment)
    per_item = (treat - base).mean(axis=0)  # (items,): each item's difference, averaged over seeds
    items = per_item.shape[0]
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, items, size=(num_resamples, items))
    resampled = per_item[draws].mean(axis=1)
    alpha = (1.0 - confidence) / 2
    low, high = np.quantile(resampled, [alpha, 1.0 - alpha])
    return {
        "difference": float(per_item.mean()),
        "low": float(low),
        "high": float(high),
        "confidence": confidence,
        "num_resamples": num_resamples,
        "seed": seed,
    }


def paired_example_stats(baseline: Any, treatment: Any, **bootstrap: Any) -> dict[str, Any]:
    """Accuracies, the paired table, McNemar's exact p and the bootstrap CI of one metric (see above)."""
    base, treat = _paired(baseline, treatment)
    counts = discordant_counts(base, treat)
    return {
        "num_pairs": int(base.size),
        "baseline_accuracy": float(base.mean()),
        "llm_jepa_accuracy": float(treat.mean()),
        **counts,
        "mcnemar_p": mcnemar_exact(counts["baseline_only"], counts["treatment_only"]),
        "bootstrap": paired_bootstrap_ci(base, treat, **bootstrap),
    }


# ---------------------------------------------------------------------------------------------- per seed


def mean_std(values: Sequence[float]) -> tuple[float, float | None]:
    """Mean and sample standard deviation (ddof=1; None for a single value)."""
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, None
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def paired_tests(baseline: Sequence[float], treatment: Sequence[float]) -> dict[str, Any]:
    """Paired t-test and Wilcoxon signed-rank test (two-sided) of ``treatment - baseline``.

    A p-value is None, with the reason in ``notes``, when the test is undefined: fewer than two pairs, or
    (t-test) differences that are all equal so their spread is zero.
    """
    from scipy import stats

    differences = [t - b for b, t in zip(baseline, treatment)]
    result: dict[str, Any] = {"t_test_p": None, "wilcoxon_p": None, "notes": []}
    if len(differences) < 2:
        result["notes"].append("fewer than two paired seeds: no test")
        return result
    scale = max(1.0, *(abs(d) for d in differences))
    if all(abs(d) <= 1e-12 * scale for d in differences):
        result["wilcoxon_p"] = 1.0
        result["notes"].append("no seed differs between the arms (t statistic undefined)")
        return result
    if max(differences) - min(differences) <= 1e-12 * scale:
        result["notes"].append("every seed gives the same difference: the t statistic is undefined")
    else:
        result["t_test_p"] = float(stats.ttest_rel(treatment, baseline).pvalue)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # small-sample / ties notices
        p = float(stats.wilcoxon(treatment, baseline).pvalue)
    result["wilcoxon_p"] = None if math.isnan(p) else p
    return result


def holm_correction(p_values: dict[str, float | None]) -> dict[str, float | None]:
    """Holm-Bonferroni adjusted p-values across the given tests (None stays None and is not counted)."""
    present = sorted((p, name) for name, p in p_values.items() if p is not None)
    adjusted: dict[str, float | None] = {name: None for name in p_values}
    running = 0.0
    for rank, (p, name) in enumerate(present):
        running = max(running, min(1.0, (len(present) - rank) * p))
        adjusted[name] = running
    return adjusted
