"""Step time of the LLM-JEPA cost modes relative to plain fine-tuning (SFT), same model, batch and data.

    HF_HUB_OFFLINE=1 .venv/bin/python -m bench.llm_jepa_step_time                 # defaults below
    HF_HUB_OFFLINE=1 .venv/bin/python -m bench.llm_jepa_step_time --peft none --steps 12 --output out.json

Variants (each a full optimiser step: collate, forward, backward, AdamW update):

* ``sft``: the conversation only (lambda = 0), the baseline;
* ``separate``: three forward passes (conversation, Text + [PRED], Code);
* ``packed``: one forward pass under the block mask;
* ``packed+stop-gradient``: one forward pass + a no-grad forward of the Code rows (shared prefix once);
* ``packed+dropout``: packed with ``jepa_dropout`` (default 0.5), the JEPA term skipped on a fixed,
  seeded share of steps (the same schedule as ``LLMJepaTrainer``); its figure is the mean over steps.

Variants run interleaved (one step of each per round, same batch) so that load from other processes
hits all of them alike; the reported time is the median over rounds (mean for the dropout variant). Both
wall-clock and process CPU time are recorded: on a shared machine the CPU-time ratios are the steadier ones.
Model, fine-tuning method (LoRA r/alpha/dropout/targets), k, batch size, max_length and data come from the
default recipe (``--recipe``): the bundled SmolLM2-135M-Instruct via ``jepa_core.resolver`` on regex-synth.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time
from dataclasses import replace
from pathlib import Path

import jepa_core  # noqa: F401  (environment shims first)

logger = logging.getLogger("bench.llm_jepa_step_time")

VARIANTS = {
    "sft": {"jepa_loss_weight": 0.0},
    "separate": {"jepa_mode": "separate"},
    "packed": {"jepa_mode": "packed"},
    "packed+stop-gradient": {"jepa_mode": "packed", "jepa_stop_gradient": True},
    "packed+dropout": {"jepa_mode": "packed"},  # jepa_dropout set from --dropout
}
TARGETS = {"packed": 1.4, "packed+stop-gradient": 1.2}  # issue 16


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", default="recipes/llm_jepa/regex-smollm2-lora.yaml",
                        help="recipe giving the model, fine-tuning method, k, batch size and data")
    parser.add_argument("--peft", choices=["none", "lora"], default=None, help="override the recipe's peft")
    parser.add_argument("--batch-size", type=int, default=None, help="override per_device_train_batch_size")
    parser.add_argument("--steps", type=int, default=8, help="timed rounds (one step of every variant each)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed rounds first")
    parser.add_argument("--dropout", type=float, default=0.5, help="jepa_dropout of the dropout variant")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: leave torch's default)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--output", type=Path, default=None, help="write the results as JSON here")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--variants", default=",".join(VARIANTS),
                        help="comma-separated subset of the variants to time (sft is always included)")
    args = parser.parse_args(argv)
    chosen = ["sft", *(v for v in args.variants.split(",") if v and v != "sft")]
    unknown = [v for v in chosen if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variants {unknown}; choose from {list(VARIANTS)}")
    args.variants = chosen
    return args


def build(args: argparse.Namespace):
    from llm_jepa.data import load_messages_dataset
    from llm_jepa.loading import load_model_for_training
    from llm_jepa.run import parse_training_config
    from llm_jepa.views import ViewTokenizer, tokenize_views_dataset

    overrides = ["--output_dir", "/tmp/llm_jepa_bench_unused"]
    if args.peft:
        overrides += ["--peft", args.peft]
    if args.batch_size:
        overrides += ["--per_device_train_batch_size", str(args.batch_size)]
    model_args, data_args, train_args = parse_training_config([args.recipe, *overrides])
    model, tokenizer, pred_ids, _ = load_model_for_training(model_args, num_pred_tokens=train_args.num_pred_tokens)
    model.to(args.device)
    batch_size = train_args.per_device_train_batch_size
    needed = batch_size * (args.steps + args.warmup)
    messages = load_messages_dataset(data_args.dataset, split=data_args.dataset_split,
                                     **(data_args.dataset_kwargs or {}))
    messages = messages.select(range(min(needed, len(messages))))
    features = tokenize_views_dataset(messages, ViewTokenizer(tokenizer, text_view=train_args.jepa_text_view,
                                                              max_length=data_args.max_length))
    rows = [features[i] for i in range(len(features))]
    batches = [rows[(i * batch_size) % len(rows):][:batch_size] for i in range(args.steps + args.warmup)]
    return model, tokenizer, pred_ids, batches, model_args, data_args, train_args


def token_slots(batch: dict, config) -> int:
    """Token positions the step's forward passes run over, padding included (what the matmuls pay for)."""
    if not config.uses_jepa:  # the objective runs the example rows' conversation region only
        return int(batch["pred_index"].shape[0] * batch["labels"].shape[1])
    slots = int(batch["input_ids"].numel())
    if "code_input_ids" in batch:  # stop-gradient: the Code rows' separate no-grad forward
        slots += int(batch["code_input_ids"].numel())
    return slots


def run(args: argparse.Namespace) -> dict:
    import torch

    from llm_jepa.arguments import JepaObjectiveConfig
    from llm_jepa.objective import jepa_term_scheduled, llm_jepa_loss
    from llm_jepa.packing import LLMJepaCollator

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model, tokenizer, pred_ids, batches, model_args, data_args, train_args = build(args)
    model.train()
    objective = {k: v for k, v in train_args.objective_dict().items() if k not in ("jepa_mode", "jepa_dropout")}
    base = replace(JepaObjectiveConfig(**objective), jepa_stop_gradient=False, jepa_mode="packed")
    configs = {name: replace(base, **VARIANTS[name]) for name in args.variants}
    if "packed+dropout" in configs:
        configs["packed+dropout"] = replace(configs["packed+dropout"], jepa_dropout=args.dropout)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    collators = {
        name: LLMJepaCollator(pred_token_ids=pred_ids, pad_token_id=pad, mode=cfg.jepa_mode,
                              stop_gradient=cfg.jepa_stop_gradient)
        for name, cfg in configs.items()
    }
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-5)  # tiny steps: the model barely moves between variants
    times: dict[str, list[float]] = {name: [] for name in configs}
    cpu_times: dict[str, list[float]] = {name: [] for name in configs}
    tokens = []
    slots: dict[str, list[int]] = {name: [] for name in configs}  # rows x width of each collated batch
    for round_index, rows in enumerate(batches):
        timed = round_index >= args.warmup
        step = round_index - args.warmup
        tokens.append(sum(len(r["input_ids"]) for r in rows))
        for name, cfg in configs.items():
            keep = jepa_term_scheduled(args.seed, step, cfg.jepa_dropout)  # the trainer's schedule
            start, cpu_start = time.perf_counter(), time.process_time()
            batch = {k: v.to(args.device) for k, v in collators[name](rows).items()}
            slots[name].append(token_slots(batch, cfg))
            loss = llm_jepa_loss(model, batch, cfg, compute_jepa=keep).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            if timed:
                times[name].append(time.perf_counter() - start)
                cpu_times[name].append(time.process_time() - cpu_start)
        logger.info("round %d/%d%s: %s", round_index + 1, len(batches), "" if timed else " (warm-up)",
                    ", ".join(f"{n} {t[-1]:.2f}s" for n, t in times.items() if timed and t))
    def central(name: str, values: list[float]) -> float:
        return statistics.mean(values) if configs[name].jepa_dropout > 0 else statistics.median(values)

    wall = {name: central(name, values) for name, values in times.items()}
    cpu = {name: central(name, values) for name, values in cpu_times.items()}
    return {
        "recipe": args.recipe, "model": model_args.model_name_or_path, "peft": model_args.peft,
        "lora_r": model_args.lora_r, "num_pred_tokens": base.num_pred_tokens, "jepa_loss": base.jepa_loss,
        "batch_size": train_args.per_device_train_batch_size, "dataset": data_args.dataset,
        "rounds": args.steps, "warmup_rounds": args.warmup, "dropout": args.dropout, "device": args.device,
        "torch_threads": torch.get_num_threads(), "mean_conversation_tokens_per_batch": statistics.mean(tokens),
        "seconds_per_step": wall, "ratio_to_sft": {n: wall[n] / wall["sft"] for n in wall},
        "cpu_seconds_per_step": cpu, "cpu_ratio_to_sft": {n: cpu[n] / cpu["sft"] for n in cpu},
        "all_seconds": times, "all_cpu_seconds": cpu_times, "targets": TARGETS,
        "mean_token_slots_per_batch": {name: statistics.mean(values) for name, values in slots.items()},
    }


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    result = run(args)
    print(f"\nLLM-JEPA step time vs. SFT ({result['model']}, peft={result['peft']}, k={result['num_pred_tokens']}, "
          f"batch {result['batch_size']}, {args.steps} rounds, {result['torch_threads']} threads, {args.device})")
    print(f"{'variant':<22} {'s/step':>8} {'x SFT':>7} {'cpu s':>8} {'x SFT':>7} {'target':>8} {'slots':>7}")
    for name, seconds in result["seconds_per_step"].items():
        target = TARGETS.get(name)
        print(f"{name:<22} {seconds:8.2f} {result['ratio_to_sft'][name]:7.2f} "
              f"{result['cpu_seconds_per_step'][name]:8.2f} {result['cpu_ratio_to_sft'][name]:7.2f} "
              f"{'<= ' + str(target) if target else '':>8} {result['mean_token_slots_per_batch'][name]:7.0f}")
    if args.output:
        from jepa_core.rundir import write_json

        write_json(args.output, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
