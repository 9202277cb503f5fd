"""VL-JEPA vs. the CLIP/LiT-style dual-encoder baseline, side by side (same encoders, data and samples).

    HF_HUB_OFFLINE=1 .venv/bin/python -m bench.vljepa_vs_baseline                 # runs/compare/report.md
    HF_HUB_OFFLINE=1 .venv/bin/python -m bench.vljepa_vs_baseline --rerun         # retrain every run

Training runs through ``vljepa train`` (each skipped when its ``metrics.json`` already exists):

* easy-VQA VQA accuracy: ``recipes/vljepa/easyvqa-effnet-minilm.yaml`` (after its first stage,
  ``easyvqa-templates-effnet-minilm.yaml``) vs ``easyvqa-dual-encoder.yaml`` (full test set, 9,673 questions, the
  13 answers as candidates);
* zero-shot classification of the easy-VQA test images into the 24 "colour shape" classes with the same
  two models (``vljepa eval --task zeroshot --dataset easyvqa-classes``; 7 prompt templates per class);
* retrieval R@1/5/10 both ways on 1,000 unseen generated scenes x 4 captions:
  ``recipes/vljepa/scenes-effnet-minilm.yaml`` vs ``scenes-dual-encoder.yaml``.

Each pair shares the frozen X- and Y-encoders and the training images; the easy-VQA VL-JEPA curriculum trains one
question epoch more than the dual encoder (stage 2), the other pairs the same examples and optimizer steps;
both models are scored by the same eval runners. The report (``eval.report.write_comparison_report``) also
lists the training time of each run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

RUNS = {  # run name -> (model column, task, recipe)
    "easyvqa-vljepa": ("VL-JEPA", "vqa", "recipes/vljepa/easyvqa-effnet-minilm.yaml"),
    "easyvqa-dual-encoder": ("dual encoder", "vqa", "recipes/vljepa/easyvqa-dual-encoder.yaml"),
    "scenes-vljepa": ("VL-JEPA", "retrieval", "recipes/vljepa/scenes-effnet-minilm.yaml"),
    "scenes-dual-encoder": ("dual encoder", "retrieval", "recipes/vljepa/scenes-dual-encoder.yaml"),
}

# Runs whose recipe continues an earlier stage (init_from): that stage's recipe, trained first into "<name>-stage1".
FIRST_STAGES = {"easyvqa-vljepa": "recipes/vljepa/easyvqa-templates-effnet-minilm.yaml"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output-dir", type=Path, default=Path("runs/compare"), help="one folder per run inside")
    parser.add_argument("--rerun", action="store_true", help="retrain runs that already have metrics.json")
    parser.add_argument("--only", nargs="+", choices=sorted(RUNS), default=None, help="train only these runs")
    return parser.parse_args(argv)


def train(name: str, recipe: str, output_dir: Path, *, rerun: bool, extra: tuple[str, ...] = ()) -> dict:
    """Train one run with ``vljepa train`` (a fresh process, as a user would) and return its metrics."""
    metrics_file = output_dir / "metrics.json"
    if metrics_file.is_file() and not rerun:
        print(f"[{name}] reusing {metrics_file}", flush=True)
        return json.loads(metrics_file.read_text())
    if rerun and output_dir.exists():
        raise SystemExit(f"{output_dir} holds an earlier run; move it away to retrain it from scratch")
    # An interrupted earlier run of this name continues from its last checkpoint.
    resume = ["--resume", "true"] if (output_dir / "checkpoints").is_dir() else []
    command = [sys.executable, "-m", "vljepa.cli", "train", recipe, "--output_dir", str(output_dir), *extra, *resume]
    print(f"[{name}] {' '.join(command[1:])}", flush=True)
    subprocess.run(command, check=True)
    return json.loads(metrics_file.read_text())


def zeroshot(run_dir: Path, *, rerun: bool) -> dict:
    """Zero-shot 24-way colour+shape classification of a trained easy-VQA model with ``vljepa eval``."""
    out = run_dir / "zeroshot"
    if not (out / "metrics.json").is_file() or rerun:
        subprocess.run([
            sys.executable, "-m", "vljepa.cli", "eval", "--model", str(run_dir / "model"), "--task", "zeroshot",
            "--dataset", "easyvqa-classes", "--dataset_kwargs", '{"label": "color_shape"}', "--output_dir", str(out),
        ], check=True, stdout=subprocess.DEVNULL)
    return json.loads((out / "metrics.json").read_text())


def main(argv: list[str] | None = None) -> Path:
    from eval.report import write_comparison_report

    args = parse_args(argv)
    results: dict[str, dict[str, dict]] = {}
    timings: dict[str, dict[str, float]] = {}
    for name, (column, task, recipe) in RUNS.items():
        if args.only is not None and name not in args.only:
            metrics_file = args.output_dir / name / "metrics.json"
            if not metrics_file.is_file():
                continue
            metrics = json.loads(metrics_file.read_text())
        else:
            extra: tuple[str, ...] = ()
            if name in FIRST_STAGES:
                first = args.output_dir / f"{name}-stage1"
                train(f"{name}-stage1", FIRST_STAGES[name], first, rerun=args.rerun)
                extra = ("--init_from", str(first / "model"))
            metrics = train(name, recipe, args.output_dir / name, rerun=args.rerun, extra=extra)
        results.setdefault(column, {})[task] = metrics
        if task == "vqa":
            results[column]["zeroshot"] = zeroshot(args.output_dir / name, rerun=args.rerun)
        timings.setdefault(column, {})[f"{task} run: train + eval (s)"] = metrics.get("total_seconds")
        timings[column][f"{task} run: optimizer steps"] = metrics.get("train_steps")
    report = write_comparison_report(results, args.output_dir / "report.md")
    rows = sorted({key for per_model in timings.values() for key in per_model})
    lines = ["", "## Training runs", "", "| | " + " | ".join(timings) + " |", "|---" * (len(timings) + 1) + "|"]
    for row in rows:
        lines.append(f"| {row} | " + " | ".join(str(timings[m].get(row, "—")) for m in timings) + " |")
    lines += ["", "Recipes: " + ", ".join(f"`{recipe}`" for _, _, recipe in RUNS.values()), ""]
    report.write_text(report.read_text() + "\n".join(lines))
    print(report.read_text())
    return report


if __name__ == "__main__":
    main()
