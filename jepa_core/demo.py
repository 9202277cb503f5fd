"""`make demo`: resolve every bundled model, then run VL-JEPA and LLM-JEPA on the bundled defaults.

Each job runs as its own process (``vljepa train`` twice, the two stages of the default curriculum, ``vljepa
eval`` on ``easyvqa-reworded``, ``llm-jepa train``, ``llm-jepa eval``) so what the demo does is exactly what a
user types; a failing job stops the demo with its exit code.

The VL-JEPA jobs run with two torch threads (``--vljepa-threads``): the demo owns its machine, and a second
thread on the second core took the VL-JEPA part from 623 s to 393-561 s (three runs; BENCHMARKS.md). The recipes themselves
say one thread, the safe choice on a shared CPU, so a recipe run and the demo differ in float rounding only.
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import time
from pathlib import Path

from jepa_core.resolver import list_bundled, resolve_model

logger = logging.getLogger("jepa_core.demo")

VLJEPA_TEMPLATES_RECIPE = "recipes/vljepa/easyvqa-templates-effnet-minilm.yaml"  # stage 1 of the curriculum
VLJEPA_RECIPE = "recipes/vljepa/easyvqa-effnet-minilm.yaml"  # stage 2, from stage 1's model (init_from)
LLM_JEPA_RECIPE = "recipes/llm_jepa/regex-smollm2-lora.yaml"


def _run(command: list[str]) -> float:
    logger.info("$ %s", " ".join(command))
    start = time.perf_counter()
    result = subprocess.run(command, check=False)
    if result.returncode != 0:
        raise SystemExit(f"demo step failed (exit {result.returncode}): {' '.join(command)}")
    return time.perf_counter() - start


def _train_once(run_dir: Path, command: list[str]) -> None:
    """Run a training command unless ``run_dir`` holds a finished run; resume an interrupted one."""
    if (run_dir / "metrics.json").exists():
        logger.info("%s already holds a finished run; delete it to train again", run_dir)
        return
    _run(command + (["--resume"] if run_dir.exists() else []))


def _load(model_id: str, path: Path) -> str:
    """Load a resolved folder with its library's own loader; describe what was loaded."""
    if (path / "modules.json").exists():
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(str(path), device="cpu")
        return f"SentenceTransformer, {model.get_embedding_dimension()}-d embeddings"
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM

    from jepa_core.compat import ensure_torchvision_importable

    ensure_torchvision_importable()  # vision backbones (timm) import torchvision (see jepa_core.compat)
    config = AutoConfig.from_pretrained(path)
    is_lm = any(a.endswith("ForCausalLM") for a in (config.architectures or []))
    model = (AutoModelForCausalLM if is_lm else AutoModel).from_pretrained(path)
    params = sum(p.numel() for p in model.parameters()) / 1e6
    return f"{type(model).__name__}, {params:.1f}M parameters"


def resolve_bundled() -> list[dict]:
    """Resolve (convert once, then reuse) and load every bundled model; return what was loaded from where."""
    rows = []
    for entry in list_bundled():
        if entry["installed_version"] is None:
            raise SystemExit(f"bundled package {entry['package']} is not installed: run `make install`")
        start = time.perf_counter()
        path = resolve_model(entry["id"])
        rows.append({"id": entry["id"], "package": f"{entry['package']}=={entry['installed_version']}",
                     "path": str(path), "loaded": _load(entry["id"], path),
                     "seconds": round(time.perf_counter() - start, 1)})
        logger.info("resolved and loaded %s -> %s (%s)", entry["id"], path, rows[-1]["loaded"])
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jepa_core.demo", description=__doc__)
    parser.add_argument("--output-dir", default="runs/demo", help="where the demo runs are written")
    parser.add_argument("--skip", nargs="*", default=[], choices=["vljepa", "llm_jepa"],
                        help="jobs to skip")
    parser.add_argument("--vljepa-threads", type=int, default=2,
                        help="torch threads for the VL-JEPA jobs; the demo owns the machine, so both of its 2 cores "
                             "(the recipes say 1, which is safe on a shared CPU)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    out = Path(args.output_dir)
    summary: dict = {"bundled": resolve_bundled()}
    py = sys.executable
    # Idempotent: a finished job (metrics.json present) is reused; an interrupted one is resumed or replaced.
    if "vljepa" not in args.skip:
        stage1, run_dir = out / "vljepa-templates", out / "vljepa"
        threads = ["--torch_num_threads", str(args.vljepa_threads)]
        _train_once(stage1, [py, "-m", "vljepa.cli", "train", VLJEPA_TEMPLATES_RECIPE, "--output_dir", str(stage1),
                             "--eval_task", "none", *threads])
        _train_once(run_dir, [py, "-m", "vljepa.cli", "train", VLJEPA_RECIPE, "--output_dir", str(run_dir),
                              "--init_from", str(stage1 / "model"), *threads])
        metrics = json.loads((run_dir / "metrics.json").read_text())
        reworded_dir = run_dir / "eval-reworded"  # the same test images, questions in words training never used
        if not (reworded_dir / "metrics.json").exists():
            _run([py, "-m", "vljepa.cli", "eval", "--model", str(run_dir / "model"), "--task", "vqa",
                  "--dataset", "easyvqa-reworded", "--output_dir", str(reworded_dir), *threads])
        reworded = json.loads((reworded_dir / "metrics.json").read_text())
        summary["vljepa"] = {"vqa_accuracy": metrics.get("vqa_accuracy"),
                             "reworded_vqa_accuracy": reworded.get("vqa_accuracy"),
                             "reworded_vqa_accuracy_by_category": reworded.get("vqa_accuracy_by_category"),
                             "model": str(run_dir / "model"), "metrics": str(run_dir / "metrics.json"),
                             "reworded_metrics": str(reworded_dir / "metrics.json")}
    if "llm_jepa" not in args.skip:
        run_dir = out / "llm_jepa"
        if not (run_dir / "metrics.json").exists():
            _run([py, "-m", "llm_jepa.cli", "train", LLM_JEPA_RECIPE, "--output_dir", str(run_dir),
                  "--overwrite_output_dir", "true"])
            _run([py, "-m", "llm_jepa.cli", "eval", "--model", str(run_dir), "--dataset", "regex-synth",
                  "--split", "test", "--limit", "100", "--output_dir", str(run_dir)])
        else:
            logger.info("%s already holds a finished run; delete it to train again", run_dir)
        summary["llm_jepa"] = {"metrics": json.loads((run_dir / "metrics.json").read_text())}
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
