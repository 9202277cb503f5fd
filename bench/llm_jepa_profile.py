"""Where the time of an LLM-JEPA training step goes, against plain fine-tuning: torch.profiler shares.

    HF_HUB_OFFLINE=1 .venv/bin/python -m bench.llm_jepa_profile --steps 3 --threads 1 --output profile.json

Same model, batch and data as ``bench.llm_jepa_step_time`` (the default recipe: bundled SmolLM2-135M with LoRA,
batch 8 regex-synth). The variants (``sft``, ``packed``, ``packed+stop-gradient``) run interleaved, one step of
each per round on the same batch: ``--warmup`` untimed rounds, then ``--steps`` profiled ones. Every operator's
self CPU time is attributed to the variant and phase whose labelled range encloses it. Reported per variant,
as *shares of that variant's profiled CPU time* (relative figures: on a shared machine absolute times mean
little), and its total against SFT's:

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


def _variant_of(event) -> tuple[str | None, str | None]:
    """(variant, phase) of the labelled ranges ``<variant>/<phase>`` enclosing a profiler event."""
    variant = phase = None
    node = event
    while node is not None:
        if "/" in node.name and node.name.split("/", 1)[0] in VARIANTS:
            variant, label = node.name.split("/", 1)
            if label in PHASES:
                phase = phase or label
        node = node.cpu_parent
    return variant, phase


def run(args: argparse.Namespace) -> dict:
    import torch
    from torch.profiler import ProfilerActivity, profile, record_function

    from bench.llm_jepa_step_time import build
    from llm_jepa import objective
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
    settings = {k: v for k, v in train_args.objective_dict().items() if k not in ("jepa_mode", "jepa_dropout")}
    base = replace(JepaObjectiveConfig(**settings), jepa_mode="packed", jepa_stop_gradient=False)
    configs = {name: replace(base, **overrides) for name, overrides in VARIANTS.items()}
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    collators = {
        name: LLMJepaCollator(pred_token_ids=pred_ids, pad_token_id=pad, mode=config.jepa_mode,
                              stop_gradient=config.jepa_stop_gradient)
        for name, config in configs.items()
    }
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    current = {"variant": ""}
    original_mask = objective.block_attention_mask

    def labelled_mask(*mask_args, **kwargs):
        with record_function(f"{current['variant']}/block_mask"):
            return original_mask(*mask_args, **kwargs)

    lengths: dict[str, tuple[int, int, int]] = {}

    def step(name: str, rows) -> None:
        current["variant"] = name
        with record_function(f"{name}/collate"):
            batch = collators[name](rows)
        with record_function(f"{name}/forward"):
            loss = objective.llm_jepa_loss(model, batch, configs[name]).loss
        with record_function(f"{name}/backward"):
            loss.backward()
        with record_function(f"{name}/optimizer"):
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        rows, width = batch["input_ids"].shape
        lengths[name] = (int(width), int(batch["labels"].shape[1]), int(rows * width))

    objective.block_attention_mask = labelled_mask
    try:
        for index in range(args.warmup):
            for name in VARIANTS:
                step(name, batches[index % len(batches)])
        # interleaved: one step of every variant per round, so load from other processes hits all alike
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for index in range(args.steps):
                for name in VARIANTS:
                    step(name, batches[(args.warmup + index) % len(batches)])
    finally:
        objective.block_attention_mask = original_mask
    phase_us: dict[str, dict[str, float]] = {name: defaultdict(float) for name in VARIANTS}
    op_us: dict[str, dict[str, float]] = {name: defaultdict(float) for name in VARIANTS}
    for event in prof.events():
        variant, phase = _variant_of(event)
        if variant is None or "/" in event.name:
            continue
        phase_us[variant][phase or "other"] += event.self_cpu_time_total
        op_us[variant][event.name] += event.self_cpu_time_total
    result = {"recipe": args.recipe, "model": model_args.model_name_or_path, "threads": torch.get_num_threads(),
              "batch_size": train_args.per_device_train_batch_size, "steps": args.steps, "variants": {}}
    sft_total = sum(phase_us["sft"].values())
    for name in VARIANTS:
        total = sum(phase_us[name].values())
        top = sorted(op_us[name].items(), key=lambda item: item[1], reverse=True)[: args.top]
        result["variants"][name] = {
            "total_cpu_ms": total / 1000,
            "cpu_ratio_to_sft": total / sft_total,
            "phase_share": {phase: phase_us[name].get(phase, 0.0) / total for phase in PHASES},
            "top_ops_share": {op: us / total for op, us in top},
            "sequence_length": lengths[name][0],
            "conversation_length": lengths[name][1],
            "tokens_per_batch": lengths[name][2],  # rows x width: packed adds Code rows
        }
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
