"""Where the time of an LLM-JEPA training step goes, against plain fine-tuning: torch.profiler shares.

    HF_HUB_OFFLINE=1 .venv/bin/python -m bench.llm_jepa_profile --steps 3 --threads 1 --output profile.json

Same model, batch and data as ``bench.llm_jepa_step_time`` (the default recipe: bundled SmolLM2-135M with LoRA,
batch 8 regex-synth). Each variant (``sft``, ``packed``, ``packed+stop-gradient``) runs ``--warmup`` untimed
steps, then ``--steps`` profiled ones. Reported per variant, as *shares of that variant's profiled CPU time*
(relative figures: on a shared machine absolute times mean little):

* phases: ``collate``, ``block_mask`` (the dense (B, 1, L, L) mask and its backend form), ``forward`` (the
  model call and the loss, mask excluded), ``backward``, ``optimizer``;
* the operators with the most self CPU time (attention, matmuls, ...).

Also the token counts per step (conversation, packed sequence), which set the floor of the packed cost.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import jepa_core  # noqa: F401  (environment shims first)

logger = logging.getLogger("bench.llm_jepa_profile")

PHASES = ("collate", "block_mask", "forward", "backward", "optimizer")
VARIANTS = {
    "sft": {"jepa_loss_weight": 0.0},
    "packed": {"jepa_mode": "packed"},
    "packed+stop-gradient": {"jepa_mode": "packed", "jepa_stop_gradient": True},
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", default="recipes/llm_jepa/regex-smollm2-lora.yaml")
    parser.add_argument("--steps", type=int, default=3, help="profiled steps per variant")
    parser.add_argument("--warmup", type=int, default=1, help="unprofiled steps per variant first")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (0: torch's default)")
    parser.add_argument("--top", type=int, default=12, help="operators listed per variant")
    parser.add_argument("--output", type=Path, default=None, help="write the shares as JSON here")
    return parser.parse_args(argv)


def _phase_totals(profile, phases) -> dict[str, float]:
    """CPU microseconds per labelled phase (record_function ranges), summed over steps."""
    totals: dict[str, float] = defaultdict(float)
    for event in profile.key_averages():
        if event.key in phases:
            totals[event.key] += event.cpu_time_total
    return dict(totals)


def profile_variant(model, rows, collator, config, *, steps: int, warmup: int, top: int) -> dict:
    import torch
    from torch.profiler import ProfilerActivity, profile, record_function

    from llm_jepa import objective

    original_mask = objective.block_attention_mask

    def labelled_mask(*args, **kwargs):
        with record_function("block_mask"):
            return original_mask(*args, **kwargs)

    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-5)

    def step(batch_rows):
        with record_function("collate"):
            batch = collator(batch_rows)
        with record_function("forward"):
            loss = objective.llm_jepa_loss(model, batch, config).loss
        with record_function("backward"):
            loss.backward()
        with record_function("optimizer"):
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        return batch

    objective.block_attention_mask = labelled_mask
    try:
        for index in range(warmup):
            step(rows[index % len(rows)])
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for index in range(steps):
                batch = step(rows[(warmup + index) % len(rows)])
    finally:
        objective.block_attention_mask = original_mask
    phases = _phase_totals(prof, PHASES)
    phases["forward"] = phases.get("forward", 0.0) - phases.get("block_mask", 0.0)  # nested range
    total = sum(phases.values())
    ops = sorted(
        (e for e in prof.key_averages() if e.key not in PHASES and not e.key.startswith("ProfilerStep")),
        key=lambda e: e.self_cpu_time_total,
        reverse=True,
    )[:top]
    return {
        "total_cpu_ms": total / 1000,
        "phase_share": {name: phases.get(name, 0.0) / total for name in PHASES},
        "top_ops_share": {e.key: e.self_cpu_time_total / total for e in ops},
        "sequence_length": int(batch["input_ids"].shape[1]),
        "conversation_length": int(batch["labels"].shape[1]),
    }


def run(args: argparse.Namespace) -> dict:
    import torch

    from bench.llm_jepa_step_time import build
    from llm_jepa.arguments import JepaObjectiveConfig
    from llm_jepa.packing import LLMJepaCollator

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    build_args = argparse.Namespace(
        recipe=args.recipe, peft=None, batch_size=None, steps=args.steps, warmup=args.warmup, device="cpu"
    )
    model, tokenizer, pred_ids, batches, model_args, _, train_args = build(build_args)
    model.train()
    objective = {k: v for k, v in train_args.objective_dict().items() if k not in ("jepa_mode", "jepa_dropout")}
    base = replace(JepaObjectiveConfig(**objective), jepa_mode="packed", jepa_stop_gradient=False)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    result = {"recipe": args.recipe, "model": model_args.model_name_or_path, "threads": torch.get_num_threads(),
              "batch_size": train_args.per_device_train_batch_size, "steps": args.steps, "variants": {}}
    for name, overrides in VARIANTS.items():
        config = replace(base, **overrides)
        collator = LLMJepaCollator(pred_token_ids=pred_ids, pad_token_id=pad, mode=config.jepa_mode,
                                   stop_gradient=config.jepa_stop_gradient)
        logger.info("profiling %s", name)
        result["variants"][name] = profile_variant(
            model, batches, collator, config, steps=args.steps, warmup=args.warmup, top=args.top
        )
    sft_total = result["variants"]["sft"]["total_cpu_ms"]
    for stats in result["variants"].values():
        stats["cpu_ratio_to_sft"] = stats["total_cpu_ms"] / sft_total
    return result


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    result = run(args)
    for name, stats in result["variants"].items():
        print(f"\n{name}: {stats['cpu_ratio_to_sft']:.2f}x SFT profiled CPU time, sequence length "
              f"{stats['sequence_length']} (conversation {stats['conversation_length']})")
        print("  phases:  " + ", ".join(f"{k} {v:.1%}" for k, v in stats["phase_share"].items()))
        for op, share in stats["top_ops_share"].items():
            print(f"  {share:6.1%}  {op}")
    if args.output:
        args.output.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
