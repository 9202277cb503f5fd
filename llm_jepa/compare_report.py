"""``comparison.md`` of ``llm-jepa compare`` (:mod:`llm_jepa.compare`): the per-example and per-seed tables."""

from __future__ import annotations

from typing import Any

from llm_jepa.pairing import SCORING_TITLES


def _fmt(value: float | None, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _mean_std(mean: float, std: float | None) -> str:
    return f"{mean:.4f}" if std is None else f"{mean:.4f} ± {std:.4f}"


def render_markdown(report: dict[str, Any]) -> str:
    """``comparison.md``: the summary table, the caveats and the per-seed values."""
    seeds, metrics = report["seeds"], report["metrics"]
    n = len(seeds)
    header = (
        f"Seeds {', '.join(map(str, seeds))} (N={n}); both arms use the same seed. Baseline: the same "
        f"recipe with `jepa_loss_weight=0`. Evaluated on split `{report['eval_split']}` of "
        f"`{report['dataset']}`. Training overrides: `{' '.join(report['overrides']) or 'none'}`."
    )
    if report.get("baseline_from"):
        differing = sorted({key for per_seed in report["baseline_differences"].values() for key in per_seed})
        header += (
            f" The baseline runs are reused from `{report['baseline_from']}`; their training configuration "
            f"differs from this comparison's baseline in: {', '.join(f'`{key}`' for key in differing) or 'nothing'}."
        )
    lines = [
        f"# LLM-JEPA vs. baseline: `{report['recipe']}`",
        "",
        header,
        "",
        *render_example_section(report["examples"], report.get("options", {})),
        "## Per-seed accuracy: mean ± std over seeds, paired tests across seeds",
        "",
        "| metric | baseline (mean ± std) | LLM-JEPA (mean ± std) | difference | paired t p | Holm "
        + "| Wilcoxon p | Holm |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, row in metrics.items():
        lines.append(
            f"| {name} | {_mean_std(row['baseline_mean'], row['baseline_std'])} | "
            f"{_mean_std(row['llm_jepa_mean'], row['llm_jepa_std'])} | {row['mean_difference']:+.4f} | "
            f"{_fmt(row['t_test_p'])} | {_fmt(row['t_test_p_holm'])} | {_fmt(row['wilcoxon_p'])} | "
            f"{_fmt(row['wilcoxon_p_holm'])} |"
        )
    power = (
        f"- With N={n} seeds these tests have low power: the smallest two-sided Wilcoxon p-value possible "
        f"is 2/2^N = {2 / 2**n:.4f}, and the t-test assumes normally distributed differences."
    )
    holm = (
        f"- Holm columns correct for testing {len(metrics)} metrics at once. A gain that is significant only "
        "before the correction is not evidence of an improvement."
    )
    lines += ["", "Notes:", "", power, holm]
    lines += [f"- {name}: {note}" for name, row in metrics.items() for note in row["notes"]]
    lines += ["", "## Per-seed values", "", "| metric | seed | baseline | LLM-JEPA |", "|---|---|---|---|"]
    for name, row in metrics.items():
        for seed, base, treat in zip(seeds, row["baseline"], row["llm_jepa"]):
            lines.append(f"| {name} | {seed} | {base:.4f} | {treat:.4f} |")
    if report.get("plot"):
        lines += ["", "## Training curves", "", f"![LM loss per step of both arms]({report['plot']})", ""]
        lines.append(
            "Training LM loss per optimizer step (thin: one seed, thick: the mean). Accuracy is measured once, "
            "after training; no per-step accuracy is logged."
        )
    return "\n".join(lines) + "\n"


def render_example_section(examples: dict[str, Any], options: dict[str, Any]) -> list[str]:
    """The per-example table: both scorings, pooled discordant pairs, McNemar's exact p, bootstrap CI."""
    lines = [
        "## Per-example paired statistics (both arms on the same seed and test item)",
        "",
        (
            "| scoring | pairs (seeds x items) | baseline acc | LLM-JEPA acc | difference [95% CI] | both right "
            "| only baseline (b) | only LLM-JEPA (c) | McNemar exact p |"
        ),
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for scoring, row in examples.items():
        ci = row["bootstrap"]
        lines.append(
            f"| {SCORING_TITLES[scoring]} | {row['num_pairs']} ({row['num_pairs'] // row['num_items']} x "
            f"{row['num_items']}) | {row['baseline_accuracy']:.4f} | {row['llm_jepa_accuracy']:.4f} | "
            f"{ci['difference']:+.4f} [{ci['low']:+.4f}, {ci['high']:+.4f}] | {row['both_correct']} | "
            f"{row['baseline_only']} | {row['treatment_only']} | {row['mcnemar_p']:.4g} |"
        )
    any_row = next(iter(examples.values()))["bootstrap"]
    lines += [
        "",
        (
            "- McNemar: two-sided exact binomial test of c against b, the discordant (seed, item) pairs pooled "
            "over seeds. Pairs of one item under different seeds are not independent, so this p-value is "
            "optimistic when the same items are hard or easy on every seed; the bootstrap keeps that correlation."
        ),
        (
            f"- Bootstrap: {any_row['num_resamples']} resamples of the test items (each drawn item keeps all its "
            f"seeds), percentile {any_row['confidence']:.0%} interval, numpy seed {any_row['seed']}."
        ),
        "- Two scorings are compared, so read the p-values against alpha / 2 (Bonferroni) for a joint claim.",
        "",
    ]
    return lines
