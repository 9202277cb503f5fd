"""``llm-jepa compare RECIPE --seeds N``: LLM-JEPA against plain fine-tuning, seed by seed, with statistics.

    llm-jepa compare recipes/llm_jepa/regex-smollm2-lora.yaml --seeds 5 --output_dir runs/compare-regex \\
        --max_steps 200          # any further --field value goes to both training runs

For each seed the recipe is trained twice with that seed, once as given (LLM-JEPA) and once with
``jepa_loss_weight=0`` (the baseline), through :func:`llm_jepa.run.run_training`; both models are scored on
the same evaluation split with :func:`llm_jepa.evaluate.evaluate_model`. The report gives, per metric, the
mean +/- standard deviation of each arm, the paired t-test and Wilcoxon signed-rank p-values (scipy), and
Holm-corrected p-values across the metrics compared. With few seeds these tests have little power (with N
seeds the smallest two-sided Wilcoxon p-value is 2/2^N), and a gain that is only significant before the
correction is not evidence. Writes ``comparison.json`` and ``comparison.md``; finished runs are reused.
"""

from __future__ import annotations

import json
import logging
import math
import sys
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from jepa_core.config import parse_json_mapping
from llm_jepa.evaluate import evaluate_model, is_score, load_eval_dataset

logger = logging.getLogger(__name__)

ARMS = ("baseline", "llm_jepa")
ARM_FLAGS = {"baseline": ["--jepa_loss_weight", "0"], "llm_jepa": []}
ARM_TITLES = {"baseline": "baseline (jepa_loss_weight=0)", "llm_jepa": "LLM-JEPA"}


@dataclass
class CompareArguments:
    """Options of ``llm-jepa compare`` (every other ``--field value`` goes to both training runs)."""

    seeds: int = field(metadata={"help": "Number of seeds; each seed trains both arms."})
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
    max_new_tokens: int = field(default=128, metadata={"help": "Longest generated answer, in tokens."})

    def __post_init__(self) -> None:
        if self.seeds < 1:
            raise ValueError(f"seeds must be >= 1, got {self.seeds}")
        if self.seed_list is not None and len(self.seed_values()) != self.seeds:
            raise ValueError(
                f"seed_list {self.seed_list!r} does not hold --seeds {self.seeds} distinct seeds"
            )
        if self.seeds < 2:
            logger.warning("with one seed there is no spread and no significance test; use --seeds 3 or more")
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
    return "\n".join(lines) + "\n"


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
    from jepa_core.rundir import write_json

    record_file = run_dir / "compare_run.json"
    if record_file.is_file():
        record = json.loads(record_file.read_text())
        if record.get("argv") == argv:
            logger.info("reusing finished run %s", run_dir)
            return record["metrics"]
    model_dir = run_training(argv)
    metrics = evaluate_run(model_dir, dataset, args, run_dir / "eval")
    write_json(record_file, {"argv": argv, "model_dir": str(model_dir), "metrics": metrics})
    return metrics


def run_comparison(recipe: str, overrides: list[str], args: CompareArguments) -> dict[str, Any]:
    """Train and score both arms for every seed; write and return the report."""
    from jepa_core.rundir import atomic_write_text, write_json, write_run_metadata

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
        "overrides": overrides,
        "seeds": seeds,
        "dataset": source,
        "eval_split": args.eval_split,
        "options": asdict(args),
        "runs": runs,
        "metrics": compare_runs(runs["baseline"], runs["llm_jepa"]),
    }
    write_json(root / "comparison.json", report)
    atomic_write_text(root / "comparison.md", render_markdown(report))
    return report


def main(argv: Sequence[str] | None = None) -> int:
    """``llm-jepa compare RECIPE --seeds N [--output_dir DIR] [--field value ...]``; prints comparison.md."""
    from transformers import HfArgumentParser

    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0].startswith("-"):
        print(
            "usage: llm-jepa compare RECIPE.yaml --seeds N [--output_dir DIR] [--field value ...]",
            file=sys.stderr,
        )
        HfArgumentParser(CompareArguments).print_help()
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    parser = HfArgumentParser(CompareArguments, allow_abbrev=False)
    args, overrides = parser.parse_args_into_dataclasses(args=argv[1:], return_remaining_strings=True)
    report = run_comparison(argv[0], list(overrides), args)
    print(render_markdown(report))
    return 0
