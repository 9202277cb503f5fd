"""``llm-jepa compare RECIPE --seeds N``: LLM-JEPA against plain fine-tuning, seed by seed, with statistics.

    llm-jepa compare recipes/llm_jepa/regex-smollm2-lora.yaml --seeds 5 --output_dir runs/compare-regex \\
        --max_steps 200          # any further --field value goes to both training runs

For each seed the recipe is trained twice with that seed, once as given (LLM-JEPA) and once with
``jepa_loss_weight=0`` (the baseline), through :func:`llm_jepa.run.run_training`; both models are scored on
the same evaluation split with :func:`llm_jepa.evaluate.evaluate_model`. The report gives:

* per example (:mod:`llm_jepa.pairing`, :mod:`eval.paired_stats`), for two scorings side by side (semantic:
  regex equivalence / GSM8K answer / SQL execution; strict: string exact match): the two arms' predictions
  paired by example id within each seed, McNemar's exact test on the discordant pairs pooled over seeds and
  a paired bootstrap 95% CI of the accuracy difference (resampling test items, all seeds of an item
  together; fixed ``bootstrap_seed``);
* per seed: for every metric the mean +/- standard deviation of each arm, the paired t-test and Wilcoxon
  signed-rank p-values (scipy) and Holm-corrected p-values across the metrics. With N seeds the smallest
  two-sided Wilcoxon p-value is 2/2^N, so these alone can rarely reach significance;
* ``loss_vs_step.png``: the LM loss per optimizer step of both arms, from each run's ``trainer_state.json``
  (training loss: there is no per-step accuracy during training).

Writes ``comparison.json`` and ``comparison.md`` (and the plot); finished runs are reused.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from eval.paired_stats import (
    DEFAULT_BOOTSTRAP_RESAMPLES,
    DEFAULT_BOOTSTRAP_SEED,
    holm_correction,
    mean_std,
    paired_tests,
)
from jepa_core.config import parse_json_mapping
from llm_jepa.evaluate import evaluate_model, is_score, load_eval_dataset
from llm_jepa.pairing import SCORING_TITLES, example_statistics, read_predictions, training_curve

logger = logging.getLogger(__name__)

ARMS = ("baseline", "llm_jepa")
ARM_FLAGS = {"baseline": ["--jepa_loss_weight", "0"], "llm_jepa": []}
ARM_TITLES = {"baseline": "baseline (jepa_loss_weight=0)", "llm_jepa": "LLM-JEPA"}


@dataclass
class CompareArguments:
    """Options of ``llm-jepa compare`` (every other ``--field value`` goes to both training runs)."""

    seeds: int | None = field(
        default=None,
        metadata={"help": "Number of seeds; each seed trains both arms (default: the length of seed_list)."},
    )
    seed_start: int = field(default=1, metadata={"help": "First seed (seeds are seed_start .. +seeds-1)."})
    seed_list: str | None = field(
        default=None,
        metadata={
            "help": "Comma-separated seeds to use instead of seed_start (e.g. the paper's 82,23,37,84,4)."
        },
    )
    output_dir: str = field(default="runs/compare", metadata={"help": "Root of the runs and the reports."})
    eval_dataset: str | None = field(
        default=None,
        metadata={
            "help": "Data source to score on (default: the recipe's dataset, with its dataset_kwargs)."
        },
    )
    eval_dataset_kwargs: str | None = field(
        default=None,
        metadata={"help": "JSON object of options for eval_dataset (e.g. Spider's database_dir)."},
    )
    eval_split: str = field(default="test", metadata={"help": "Split of the evaluation data to score on."})
    eval_limit: int | None = field(default=None, metadata={"help": "Score the first N examples only."})
    batch_size: int = field(default=8, metadata={"help": "Prompts per generate() call when scoring."})
    bootstrap_resamples: int = field(
        default=DEFAULT_BOOTSTRAP_RESAMPLES, metadata={"help": "Resamples of the paired bootstrap CI."}
    )
    bootstrap_seed: int = field(
        default=DEFAULT_BOOTSTRAP_SEED, metadata={"help": "Seed of the bootstrap resampling (fixed: reruns agree)."}
    )
    max_new_tokens: int = field(default=128, metadata={"help": "Longest generated answer, in tokens."})

    def __post_init__(self) -> None:
        if self.seeds is None:
            if self.seed_list is None:
                raise ValueError("give --seeds N or --seed_list S1,S2,...")
            self.seeds = len(self.seed_values())
        if self.seeds < 1:
            raise ValueError(f"seeds must be >= 1, got {self.seeds}")
        if self.seed_list is not None and len(self.seed_values()) != self.seeds:
            raise ValueError(
                f"seed_list {self.seed_list!r} does not hold --seeds {self.seeds} distinct seeds"
            )
        if self.seeds < 2:
            logger.warning("with one seed there is no spread and no significance test; use --seeds 3 or more")
        if self.bootstrap_resamples < 1:
            raise ValueError(f"bootstrap_resamples must be >= 1, got {self.bootstrap_resamples}")
        if self.eval_limit is not None and self.eval_limit <= 0:
            raise ValueError(f"eval_limit must be a positive count, got {self.eval_limit}")
        if self.eval_dataset_kwargs and self.eval_dataset is None:
            raise ValueError(
                "eval_dataset_kwargs needs eval_dataset (the recipe's dataset uses its dataset_kwargs)"
            )
        self.eval_options()  # bad JSON fails before any training

    def eval_options(self) -> dict[str, Any]:
        return parse_json_mapping(self.eval_dataset_kwargs, "eval_dataset_kwargs")

    def seed_values(self) -> list[int]:
        if self.seed_list is None:
            return list(range(self.seed_start, self.seed_start + self.seeds))
        try:
            seeds = [int(part) for part in self.seed_list.split(",") if part.strip()]
        except ValueError as err:
            raise ValueError(f"seed_list must be comma-separated integers, got {self.seed_list!r}") from err
        return list(dict.fromkeys(seeds))


def run_training(argv: list[str]) -> Path:
    """Train one arm (here so tests can replace it): :func:`llm_jepa.run.run_training`."""
    from llm_jepa.run import run_training as train

    return Path(train(argv))


def evaluate_run(model_dir: Path, dataset: Any, args: CompareArguments, output_dir: Path) -> dict[str, Any]:
    """Score one trained model (here so tests can replace it)."""
    from llm_jepa.loading import load_for_inference

    model, tokenizer = load_for_inference(model_dir)
    return evaluate_model(
        model,
        tokenizer,
        dataset,
        batch_size=args.batch_size,
        max_new_tokens=args.max_new_tokens,
        output_dir=output_dir,
    )


# ---------------------------------------------------------------------------------------------- statistics


def compared_metrics(runs: Sequence[dict[str, Any]]) -> list[str]:
    """Accuracy-type metrics present in every run; a task's exact_match is dropped when it is the only task
    (it would repeat the overall exact_match and count twice in the correction)."""
    names = [name for name in runs[0] if is_score(name) and all(name in run for run in runs)]
    tasks = {name.split("/")[0] for name in names if "/" in name}
    if len(tasks) == 1:
        names = [name for name in names if name != f"{next(iter(tasks))}/exact_match"]
    return names


def compare_runs(baseline: Sequence[dict[str, Any]], treatment: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per-metric summaries, tests and Holm-corrected p-values for paired runs (same seed order)."""
    if len(baseline) != len(treatment) or not baseline:
        raise ValueError(
            f"need the same non-zero number of runs per arm, got {len(baseline)} and {len(treatment)}"
        )
    metrics: dict[str, dict[str, Any]] = {}
    for name in compared_metrics([*baseline, *treatment]):
        base = [float(run[name]) for run in baseline]
        treat = [float(run[name]) for run in treatment]
        (base_mean, base_std), (treat_mean, treat_std) = mean_std(base), mean_std(treat)
        metrics[name] = {
            "baseline": base,
            "llm_jepa": treat,
            "baseline_mean": base_mean,
            "baseline_std": base_std,
            "llm_jepa_mean": treat_mean,
            "llm_jepa_std": treat_std,
            "mean_difference": treat_mean - base_mean,
            **paired_tests(base, treat),
        }
    for test in ("t_test_p", "wilcoxon_p"):
        corrected = holm_correction({name: row[test] for name, row in metrics.items()})
        for name, p in corrected.items():
            metrics[name][f"{test}_holm"] = p
    return metrics


# ---------------------------------------------------------------------------------------------- reports


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


# ---------------------------------------------------------------------------------------------- runs


def _arm_argv(recipe: str, overrides: list[str], arm: str, seed: int, run_dir: Path) -> list[str]:
    return [recipe, *overrides, *ARM_FLAGS[arm], "--seed", str(seed), "--output_dir", str(run_dir)]


def check_arms(recipe: str, overrides: list[str], root: Path) -> Any:
    """Parse both arms' configs before training anything; returns the data arguments (for the eval set)."""
    from llm_jepa.run import parse_training_config

    owned = {
        "--seed": "use --seeds / --seed_list",
        "--jepa_loss_weight": "set the LLM-JEPA weight in the recipe",
    }
    for flag, instead in owned.items():
        if any(arg == flag or arg.startswith(f"{flag}=") for arg in overrides):
            raise ValueError(
                f"llm-jepa compare sets {flag} itself; remove it from the command line ({instead})"
            )
    _, data_args, _ = parse_training_config(_arm_argv(recipe, overrides, "baseline", 0, root / "check"))
    _, _, jepa_args = parse_training_config(_arm_argv(recipe, overrides, "llm_jepa", 0, root / "check"))
    if not jepa_args.uses_jepa:
        raise ValueError(
            f"{recipe}: the LLM-JEPA arm would not use the JEPA term (jepa_loss_weight="
            f"{jepa_args.jepa_loss_weight}, jepa_dropout={jepa_args.jepa_dropout}); fix the recipe"
        )
    return data_args


def run_arm(argv: list[str], run_dir: Path, dataset: Any, args: CompareArguments) -> dict[str, Any]:
    """Train and score one arm, or reuse a finished run with the same command line."""
    from jepa_core.rundir import redact_argv, write_json

    record_file = run_dir / "compare_run.json"
    recorded_argv = redact_argv(argv)  # no --hub_token in the record
    if record_file.is_file():
        record = json.loads(record_file.read_text())
        if record.get("argv") == recorded_argv:
            logger.info("reusing finished run %s", run_dir)
            return record["metrics"]
    model_dir = run_training(argv)
    metrics = evaluate_run(model_dir, dataset, args, run_dir / "eval")
    write_json(record_file, {"argv": recorded_argv, "model_dir": str(model_dir), "metrics": metrics})
    return metrics


def plot_training_curves(root: Path, seeds: Sequence[int], name: str = "loss_vs_step.png") -> str | None:
    """``loss_vs_step.png``: both arms' LM loss per logged step (each seed thin, the mean thick); the file
    name, or None when no run logged its ``lm_loss`` in ``trainer_state.json`` (set ``logging_steps``)."""
    from eval.plots import plot_step_curves

    curves = {
        ARM_TITLES[arm]: [c for seed in seeds if (c := training_curve(root / f"seed-{seed}" / arm)) is not None]
        for arm in ARMS
    }
    if not any(curves.values()):
        logger.warning(
            "no run under %s logged lm_loss in trainer_state.json (logging_steps larger than the run?): "
            "no loss-vs-step plot", root,
        )
        return None
    plot_step_curves(
        {arm: runs for arm, runs in curves.items() if runs}, root / name,
        ylabel="training LM loss (assistant tokens)", title="LM loss per step (no per-step accuracy is logged)",
    )
    return name


def run_comparison(recipe: str, overrides: list[str], args: CompareArguments) -> dict[str, Any]:
    """Train and score both arms for every seed; write and return the report."""
    from jepa_core.rundir import atomic_write_text, redact_argv, write_json, write_run_metadata

    root = Path(args.output_dir)
    data_args = check_arms(recipe, overrides, root)
    write_run_metadata(root, {"compare": args}, argv=["llm-jepa", "compare", recipe, *overrides])
    source = args.eval_dataset or data_args.dataset
    options = (data_args.dataset_kwargs or {}) if args.eval_dataset is None else args.eval_options()
    dataset = load_eval_dataset(source, args.eval_split, options, args.eval_limit)
    seeds = args.seed_values()
    runs: dict[str, list[dict[str, Any]]] = {arm: [] for arm in ARMS}
    for seed in seeds:
        for arm in ARMS:
            run_dir = root / f"seed-{seed}" / arm
            logger.info("seed %d: training %s in %s", seed, ARM_TITLES[arm], run_dir)
            runs[arm].append(
                run_arm(_arm_argv(recipe, overrides, arm, seed, run_dir), run_dir, dataset, args)
            )
    report = {
        "recipe": recipe,
        "overrides": redact_argv(overrides),
        "seeds": seeds,
        "dataset": source,
        "eval_split": args.eval_split,
        "options": asdict(args),
        "runs": runs,
        "metrics": compare_runs(runs["baseline"], runs["llm_jepa"]),
        "examples": example_statistics(
            *(
                [read_predictions(root / f"seed-{seed}" / arm / "eval" / "predictions.jsonl") for seed in seeds]
                for arm in ARMS
            ),
            seeds,
            num_resamples=args.bootstrap_resamples,
            bootstrap_seed=args.bootstrap_seed,
        ),
        "plot": plot_training_curves(root, seeds),
    }
    write_json(root / "comparison.json", report)
    atomic_write_text(root / "comparison.md", render_markdown(report))
    return report


def main(argv: Sequence[str] | None = None) -> int:
    """``llm-jepa compare RECIPE --seeds N [--output_dir DIR] [--field value ...]``; prints comparison.md.
    The recipe may also be given as ``--config RECIPE`` (as for ``llm-jepa train``)."""
    from transformers import HfArgumentParser

    from jepa_core.config import recipe_first

    argv = recipe_first(list(sys.argv[1:] if argv is None else argv))
    if not argv or argv[0].startswith("-"):
        print(
            "usage: llm-jepa compare (RECIPE.yaml | --config RECIPE.yaml) (--seeds N | --seed_list S1,S2,...) [--output_dir DIR] "
            "[--field value ...]",
            file=sys.stderr,
        )
        HfArgumentParser(CompareArguments).print_help()
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    parser = HfArgumentParser(CompareArguments, allow_abbrev=False)
    args, overrides = parser.parse_args_into_dataclasses(args=argv[1:], return_remaining_strings=True)
    report = run_comparison(argv[0], list(overrides), args)
    print(render_markdown(report))
    return 0
