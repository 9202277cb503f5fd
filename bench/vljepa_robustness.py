"""Questions (and captions) in other words: saved models side by side on easy-VQA and its re-worded sets.

    HF_HUB_OFFLINE=1 .venv/bin/python -m bench.vljepa_robustness runs/vljepa/model runs/dual-encoder/model
    HF_HUB_OFFLINE=1 .venv/bin/python -m bench.vljepa_robustness MODEL --max_samples 500     # a quick look
    HF_HUB_OFFLINE=1 .venv/bin/python -m bench.vljepa_robustness SCENES_MODEL --retrieval --no-vqa   # scenes captions

For each model folder (VL-JEPA or the dual-encoder baseline: anything ``vljepa eval`` loads) this runs
``vljepa eval --task vqa`` on the easy-VQA test set and on ``easyvqa-reworded`` (the same test images, the
questions re-worded by rules training never uses) and on ``easyvqa-unseen-constructions`` (its yes/no
questions in constructions no grammar here uses); all 13 answers are candidates in each. Then it writes a
Markdown table to ``<output_dir>/robustness.md`` and prints it: overall accuracy on each set, accuracy per
re-wording category and construction, and the share of yes/no questions answered with yes or no.
``--retrieval`` adds R@1/5/10 both ways on the generated test scenes with their training-style captions
(``scenes``) and in other words (``scenes-reworded``), for models trained on scenes. Each evaluation's own files
(``metrics.json``, ``predictions.jsonl``, ``report.md``) stay in ``<output_dir>/<model>/<dataset>/``; an
evaluation whose ``metrics.json`` exists is reused unless ``--rerun``.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from eval.vqa import yes_no_answer_rate

logger = logging.getLogger(__name__)

VQA_SETS = ("easyvqa", "easyvqa-reworded", "easyvqa-unseen-constructions")
CATEGORY_SETS = {"easyvqa-reworded": "reworded", "easyvqa-unseen-constructions": "unseen construction"}
RETRIEVAL_SETS = ("scenes", "scenes-reworded")
RETRIEVAL_KEYS = ("i2t_r1", "i2t_r5", "i2t_r10", "t2i_r1", "t2i_r5", "t2i_r10")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("models", nargs="+", type=Path, help="saved model folders (VL-JEPA or dual encoder)")
    parser.add_argument("--names", nargs="+", default=None, help="column names (default: the folder paths)")
    parser.add_argument("--output_dir", type=Path, default=Path("runs/robustness"))
    parser.add_argument(
        "--max_samples", type=int, default=None, help="evaluate only the first N rows of each set"
    )
    parser.add_argument("--batch_size", type=int, default=128)
    parser.add_argument("--retrieval", action="store_true", help="also scenes vs scenes-reworded retrieval")
    parser.add_argument(
        "--vqa", action=argparse.BooleanOptionalAction, default=True,
        help="the easy-VQA sets (--no-vqa for a scenes-only model with --retrieval)",
    )  # fmt: skip
    parser.add_argument("--scenes_images", type=int, default=1000, help="test scenes for --retrieval")
    parser.add_argument("--rerun", action="store_true", help="re-evaluate even where metrics.json exists")
    args = parser.parse_args(argv)
    if args.names is not None and len(args.names) != len(args.models):
        parser.error(f"--names has {len(args.names)} names for {len(args.models)} models")
    return args


def evaluate(model: Path, task: str, dataset: str, out: Path, args: argparse.Namespace, kwargs: dict) -> dict:
    """``vljepa eval`` of one model on one dataset (in this process); returns its metrics."""
    from vljepa.cli import main as vljepa_main

    if not (out / "metrics.json").is_file() or args.rerun:
        argv = ["eval", "--model", str(model), "--task", task, "--dataset", dataset, "--split", "test",
                "--dataset_kwargs", json.dumps(kwargs), "--output_dir", str(out), "--batch_size", str(args.batch_size)]  # fmt: skip
        if args.max_samples is not None:
            argv += ["--max_samples", str(args.max_samples)]
        status = vljepa_main(argv)
        if status != 0:
            raise SystemExit(f"vljepa {' '.join(argv)} failed with status {status}")
    return json.loads((out / "metrics.json").read_text())


def yes_no_share(predictions_file: Path) -> float | None:
    """The share of yes/no questions answered yes or no, from an evaluation's ``predictions.jsonl``."""
    records = [json.loads(line) for line in predictions_file.read_text().splitlines() if line.strip()]
    return yes_no_answer_rate([r["prediction"] for r in records], [r["answers"] for r in records])


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.2f}"


def robustness_table(results: dict[str, dict[str, dict]]) -> str:
    """A Markdown table, one column per model: ``results[model][dataset]`` holds that evaluation's metrics
    (plus ``yes_no_answered_yes_no`` for the original set, computed from its predictions)."""
    models = list(results)
    rows: list[tuple[str, list[str]]] = []

    def add(label: str, dataset: str, key: str, sub: str | None = None) -> None:
        values = []
        for model in models:
            metrics = results[model].get(dataset, {})
            value = metrics.get(key)
            values.append(_percent(value.get(sub) if isinstance(value, dict) else value))
        if any(value != "—" for value in values):
            rows.append((label, values))

    add("easy-VQA test: accuracy", "easyvqa", "vqa_accuracy")
    add("easy-VQA test: yes/no answered yes/no", "easyvqa", "yes_no_answered_yes_no")
    for dataset in CATEGORY_SETS:
        add(f"{dataset}: accuracy", dataset, "vqa_accuracy")
        add(f"{dataset}: yes/no answered yes/no", dataset, "yes_no_answered_yes_no")
    for dataset, short in CATEGORY_SETS.items():
        categories = sorted(
            {name for per_model in results.values() for name in per_model.get(dataset, {}).get(
                "vqa_accuracy_by_category", {})}
        )  # fmt: skip
        for category in categories:
            add(f"{short}, {category}: accuracy", dataset, "vqa_accuracy_by_category", category)
        for category in categories:
            add(f"{short}, {category}: yes/no answered yes/no", dataset,
                "yes_no_answered_yes_no_by_category", category)  # fmt: skip
    for dataset in RETRIEVAL_SETS:
        for key in RETRIEVAL_KEYS:
            add(f"{dataset}: {key}", dataset, key)
    lines = ["| (%) | " + " | ".join(models) + " |", "|---" * (len(models) + 1) + "|"]
    lines += [f"| {label} | " + " | ".join(values) + " |" for label, values in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> Path:
    args = parse_args(argv)
    names = args.names or [str(model) for model in args.models]
    results: dict[str, dict[str, dict]] = {}
    for name, model in zip(names, args.models):
        folder = args.output_dir / name.replace("/", "_")
        per_model = results.setdefault(name, {})
        if args.vqa:
            for dataset in VQA_SETS:
                per_model[dataset] = evaluate(model, "vqa", dataset, folder / dataset, args, {})
            per_model["easyvqa"]["yes_no_answered_yes_no"] = yes_no_share(
                folder / "easyvqa" / "predictions.jsonl"
            )
        if args.retrieval:
            for dataset in RETRIEVAL_SETS:
                kwargs = {"num_images": args.scenes_images}
                per_model[dataset] = evaluate(model, "retrieval", dataset, folder / dataset, args, kwargs)
    samples = "all rows" if args.max_samples is None else f"the first {args.max_samples} rows of each set"
    report = args.output_dir / "robustness.md"
    report.parent.mkdir(parents=True, exist_ok=True)
    intro = []
    if args.vqa:
        intro.append(
            f"VQA with the 13 easy-VQA answers as candidates, on {samples}; `easyvqa-reworded` asks the test "
            "questions in wordings that training never uses (vljepa/data/reworded.py)."
        )
    if args.retrieval:
        intro.append(
            f"Retrieval on {args.scenes_images} generated test scenes: `scenes` with captions in the training "
            "style, `scenes-reworded` with the same facts in other words (vljepa/data/scene_captions_reworded.py)."
        )
    report.write_text("# In other words\n\n" + "\n\n".join(intro) + "\n\n" + robustness_table(results) + "\n")
    print(report.read_text())
    return report


if __name__ == "__main__":
    main()
