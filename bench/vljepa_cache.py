"""Epoch time of the default VL-JEPA recipe with a warm feature cache vs recomputing X-encoder features.

    HF_HUB_OFFLINE=1 .venv/bin/python -m bench.vljepa_cache                      # defaults below
    HF_HUB_OFFLINE=1 .venv/bin/python -m bench.vljepa_cache --steps 10 --threads 1 --output out.json

Both variants run full optimizer steps of the recipe's query stage (same model, batch and examples):

* ``warm-cache``: visual tokens are rows of the feature table read from the on-disk cache (what every
  epoch after the first, and every later run, does);
* ``recompute``: each example's image is decoded and run through the frozen X-encoder at every step (what
  training without the cache does every epoch).

Variants run interleaved (one step of each per round, same examples), so load from other processes hits
both alike; the per-step figure is the median over rounds, in wall-clock and in process CPU time (the
steadier one on a shared machine). An epoch's time is extrapolated as ``steps per epoch x median step``,
plus, for the warm cache, the measured time to load the feature table from disk. The cache is filled
first (untimed) if it is cold.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import time
from pathlib import Path

import jepa_core  # noqa: F401  (environment shims first)

logger = logging.getLogger("bench.vljepa_cache")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", default="recipes/vljepa/easyvqa-effnet-minilm.yaml")
    parser.add_argument("--steps", type=int, default=8, help="timed rounds (one step of each variant each)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds first")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: leave torch's default)")
    parser.add_argument("--feature-cache-dir", default=None, help="cache root (default: the recipe's / the library's)")
    parser.add_argument("--output", type=Path, default=None, help="write the results as JSON here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    import torch

    from jepa_core.config import parse_config
    from jepa_core.resolver import jepa_cache_dir
    from vljepa.training.arguments import VLJEPAModelArguments, VLJEPATrainingArguments
    from vljepa.training.data import build_feature_table, draw_targets, load_stages, micro_batch_indices
    from vljepa.training.feature_cache import FeatureCache
    from vljepa.training.trainer import build_model, optimizer_parameter_groups

    if args.threads:
        torch.set_num_threads(args.threads)
    model_args, train_args = parse_config((VLJEPAModelArguments, VLJEPATrainingArguments), [args.recipe, "--report_to", "none"])
    torch.manual_seed(train_args.seed)
    model = build_model(model_args)
    stages = load_stages(train_args)
    stage_index = len(stages) - 1  # the query stage (the larger one) when both are present
    stage = stages[stage_index]
    root = args.feature_cache_dir or train_args.feature_cache_dir or jepa_cache_dir() / "features"
    cache = FeatureCache.for_encoder(root, model.x_encoder, encoder_id=model.config.x_encoder_id,
                                     revision=model.config.x_encoder_revision, storage_dtype=train_args.feature_cache_dtype)
    build_feature_table([stage], cache, model.x_encoder, batch_size=train_args.feature_batch_size, progress=True)
    started = time.perf_counter()  # time to load the table from disk, as a new run would
    fresh = FeatureCache(cache.directory.parent, cache.key, storage_dtype=cache.storage_dtype)
    table = build_feature_table([stage], fresh, model.x_encoder, batch_size=train_args.feature_batch_size,
                                progress=False)
    table_seconds = time.perf_counter() - started

    optimizer = torch.optim.AdamW(optimizer_parameter_groups(model, train_args), lr=train_args.learning_rate)
    batch = train_args.per_device_train_batch_size
    model.train()

    def step(micro_step: int, variant: str) -> tuple[float, float]:
        indices = micro_batch_indices(stage, seed=train_args.seed, stage_index=stage_index, micro_step=micro_step,
                                      global_batch_size=batch, process_index=0, num_processes=1)
        wall, cpu = time.perf_counter(), time.process_time()
        targets = draw_targets(stage, indices, seed=train_args.seed, epoch=0)
        queries = [stage.queries[i] for i in indices]
        if variant == "warm-cache":
            visual = {"visual_tokens": table[[stage.image_slots[i] for i in indices]]}
        else:
            visual = {"images": [stage.dataset[stage.image_rows[i]]["image"] for i in indices]}
        loss = model(queries=queries, targets=targets, **visual).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        return time.perf_counter() - wall, time.process_time() - cpu

    variants = ("warm-cache", "recompute")
    times: dict[str, list[tuple[float, float]]] = {v: [] for v in variants}
    for round_index in range(args.warmup + args.steps):
        for variant in variants:
            measured = step(round_index, variant)
            if round_index >= args.warmup:
                times[variant].append(measured)
        logger.info("round %d: %s", round_index,
                    ", ".join(f"{v} {times[v][-1][0]:.2f}s" for v in variants if times[v]))
    steps_per_epoch = stage.batches_per_epoch(batch)
    results: dict = {"recipe": args.recipe, "stage": stage.name, "examples": len(stage), "batch_size": batch,
                     "steps_per_epoch": steps_per_epoch, "timed_rounds": args.steps,
                     "torch_threads": torch.get_num_threads(), "table_load_seconds": round(table_seconds, 2)}
    for variant in variants:
        wall = statistics.median(t[0] for t in times[variant])
        cpu = statistics.median(t[1] for t in times[variant])
        extra = table_seconds if variant == "warm-cache" else 0.0
        results[variant] = {"step_seconds": round(wall, 4), "step_cpu_seconds": round(cpu, 4),
                            "epoch_seconds": round(steps_per_epoch * wall + extra, 1),
                            "epoch_cpu_seconds": round(steps_per_epoch * cpu + extra, 1)}
    results["speedup_wall"] = round(results["recompute"]["epoch_seconds"] / results["warm-cache"]["epoch_seconds"], 2)
    results["speedup_cpu"] = round(
        results["recompute"]["epoch_cpu_seconds"] / results["warm-cache"]["epoch_cpu_seconds"], 2
    )
    print(json.dumps(results, indent=2))
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    main()
