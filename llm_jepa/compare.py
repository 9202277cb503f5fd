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
from dataclasses import asdict, dataclass, field, fields
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
from llm_jepa.compare_report import render_markdown
from llm_jepa.evaluate import evaluate_model, is_score, load_eval_dataset
from llm_jepa.pairing import example_statistics, read_predictions, training_curve

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
    baseline_from: str | None = field(
        default=None,
        metadata={
            "help": "Root of a finished comparison whose baseline runs (same seeds, same scoring options) are "
            "reused instead of training the baseline again: for ablations of settings the JEPA term reads. "
            "The report lists every training field in which the reused baseline differs from this one's."
        },
    )

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


def arm_dir(root: Path, seed: int, arm: str, args: CompareArguments) -> Path:
    """Where one arm of one seed is trained (or, with ``baseline_from``, where its baseline is reused from)."""
    if arm == "baseline" and args.baseline_from:
        return Path(args.baseline_from) / f"seed-{seed}" / arm
    return root / f"seed-{seed}" / arm


def _training_fields(argv: list[str]) -> dict[str, Any]:
    from llm_jepa.run import parse_training_config

    values: dict[str, Any] = {}
    for config in parse_training_config(argv):
        values.update({item.name: getattr(config, item.name) for item in fields(config)})
    ignored = ("output_dir", "logging_dir", "run_name", "hub_model_id")
    return {key: value for key, value in values.items() if key not in ignored}


def reuse_baseline(recipe: str, overrides: list[str], seed: int, run_dir: Path) -> tuple[dict, dict]:
    """A finished baseline run of another comparison: its metrics, and the fields where it differs from the
    baseline this comparison would train (``{field: [reused, this comparison's]}``)."""
    record_file = run_dir / "compare_run.json"
    if not record_file.is_file():
        raise FileNotFoundError(
            f"baseline_from: {run_dir} has no finished baseline ({record_file.name} missing) for seed {seed}; "
            "finish that comparison for these seeds first, or drop --baseline_from"
        )
    record = json.loads(record_file.read_text())
    reused = _training_fields(record["argv"])
    wanted = _training_fields(_arm_argv(recipe, overrides, "baseline", seed, run_dir))
    differences = {
        key: [str(reused.get(key)), str(wanted.get(key))]
        for key in sorted(set(reused) | set(wanted))
        if reused.get(key) != wanted.get(key)
    }
    logger.info("seed %d: reusing the baseline in %s (differs in %s)", seed, run_dir, sorted(differences) or "nothing")
    return record["metrics"], differences


def plot_training_curves(
    root: Path, seeds: Sequence[int], args: CompareArguments, name: str = "loss_vs_step.png"
) -> str | None:
    """``loss_vs_step.png``: both arms' LM loss per logged step (each seed thin, the mean thick); the file
    name, or None when no run logged its ``lm_loss`` in ``trainer_state.json`` (set ``logging_steps``)."""
    from eval.plots import plot_step_curves

    curves = {
        ARM_TITLES[arm]: [c for seed in seeds if (c := training_curve(arm_dir(root, seed, arm, args))) is not None]
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
    baseline_differences: dict[str, dict] = {}
    for seed in seeds:
        for arm in ARMS:
            run_dir = arm_dir(root, seed, arm, args)
            if arm == "baseline" and args.baseline_from:
                metrics, baseline_differences[str(seed)] = reuse_baseline(recipe, overrides, seed, run_dir)
                runs[arm].append(metrics)
                continue
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
                [read_predictions(arm_dir(root, seed, arm, args) / "eval" / "predictions.jsonl") for seed in seeds]
                for arm in ARMS
            ),
            seeds,
            num_resamples=args.bootstrap_resamples,
            bootstrap_seed=args.bootstrap_seed,
        ),
        "plot": plot_training_curves(root, seeds, args),
        "baseline_from": args.baseline_from,
        "baseline_differences": baseline_differences,
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
