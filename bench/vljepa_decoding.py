"""Selective decoding end to end on generated streams, and the choice of the Y-decoder's language model.

    HF_HUB_OFFLINE=1 .venv/bin/python -m bench.vljepa_decoding pipeline --output_dir runs/decoding-pipeline
    HF_HUB_OFFLINE=1 .venv/bin/python -m bench.vljepa_decoding lm-choice --output_dir runs/decoder-lm-choice

``pipeline`` runs four steps (``--steps`` picks some; each reuses the previous steps' outputs):

1. ``windows``: training (split ``train``) and validation (split ``validation``) streams cut into
   1-second windows (4 frames tiled 2x2), captioned with the event each window shows, written as an image
   folder (``<out>/windows/{train,validation}/metadata.jsonl``), keeping every window that shows an event
   and every 4th idle one;
2. ``vljepa``: ``vljepa train recipes/vljepa/ydecoder-streams-vljepa.yaml`` on the train windows;
3. ``decoder``: ``vljepa train-decoder recipes/vljepa/ydecoder-streams-vljepa-decoder.yaml``: text only in
   the model's Y-space, then fine-tuned on the model's predictions for the validation windows;
4. ``bench``: ``vljepa bench-decoding recipes/vljepa/ydecoder-bench-streams.yaml`` on unseen test streams
   (tuning seed 1, test seed 2); the table is ``<out>/bench/sweep.md``.

``lm-choice`` trains the decoder on the stream captions (frozen all-MiniLM-L6-v2 embeddings) with three
language models for the same number of steps and batch: a fresh 2-layer Llama (the default), the first 4
layers of SmolLM2-135M-Instruct with LoRA, and the whole SmolLM2-135M-Instruct with LoRA; it reports seconds
per step, decoding time per caption and exact reconstruction of the distinct captions (clean and noisy).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import jepa_core  # noqa: F401  (environment shims first)

logger = logging.getLogger("bench.vljepa_decoding")

STREAMS = {"num_frames": 240, "fps": 4.0, "min_segment_frames": 8, "max_segment_frames": 24, "event_rate": 0.8}
IDLE_TEXT = "nothing happens"
LM_VARIANTS = {
    "scratch-2L": {"language_model_init": "scratch", "language_model_num_layers": 2},
    "smollm2-4L-lora": {"language_model_init": "pretrained", "language_model_num_layers": 4},
    "smollm2-30L-lora": {"language_model_init": "pretrained"},
}


def step_windows(out: Path, args: argparse.Namespace) -> None:
    from vljepa.data import load_vl_dataset
    from vljepa.decoding.windows import write_window_caption_folder

    for split, count in (("train", args.num_train_streams), ("validation", args.num_validation_streams)):
        streams = load_vl_dataset("streams", split, seed=0, num_streams=count, **STREAMS)
        folder = write_window_caption_folder(
            streams, out / "windows" / split, window_frames=args.window_frames, idle_text=IDLE_TEXT,
            event_stride=args.event_stride, idle_stride=args.idle_stride,
        )
        logger.info("wrote %s windows of %d streams to %s", split, count, folder)


def step_vljepa(out: Path, args: argparse.Namespace) -> None:
    from vljepa.cli import main as vljepa_main

    status = vljepa_main([
        "train", "recipes/vljepa/ydecoder-streams-vljepa.yaml", "--output_dir", str(out / "vljepa"),
        "--caption_dataset_kwargs", json.dumps({"root": str(out / "windows")}),
    ])
    if status:
        raise SystemExit(f"vljepa train failed with status {status}")


def step_decoder(out: Path, args: argparse.Namespace) -> None:
    from vljepa.decoding.cli import train_decoder_main

    status = train_decoder_main([
        "recipes/vljepa/ydecoder-streams-vljepa-decoder.yaml", "--output_dir", str(out / "decoder"),
        "--embedding_model", str(out / "vljepa" / "model"),
        "--prediction_dataset_options", json.dumps({"root": str(out / "windows")}),
    ])
    if status:
        raise SystemExit(f"vljepa train-decoder failed with status {status}")


def step_bench(out: Path, args: argparse.Namespace) -> None:
    from vljepa.decoding.cli import bench_decoding_main

    status = bench_decoding_main([
        "recipes/vljepa/ydecoder-bench-streams.yaml", "--output_dir", str(out / "bench"),
        "--model", str(out / "vljepa" / "model"), "--decoder", str(out / "decoder" / "decoder"),
        "--window_frames", str(args.window_frames),
    ])
    if status:
        raise SystemExit(f"vljepa bench-decoding failed with status {status}")


STEPS = {"windows": step_windows, "vljepa": step_vljepa, "decoder": step_decoder, "bench": step_bench}


def lm_choice(out: Path, args: argparse.Namespace) -> None:
    import torch

    from jepa_core.rundir import atomic_write_text, write_json
    from vljepa.decoding.decoder import YDecoder, YDecoderConfig
    from vljepa.decoding.training import (
        DecoderTrainingArguments,
        load_training_captions,
        reconstruction_report,
        sentence_transformer_embedder,
        train_decoder,
    )

    training = DecoderTrainingArguments(
        output_dir=str(out), caption_dataset_options={"num_streams": 300}, max_steps=args.lm_steps,
        batch_size=32, learning_rate=2e-3, warmup_steps=min(40, args.lm_steps // 5),
        logging_steps=max(1, args.lm_steps // 5), embedding_noise_std=0.04,
    )
    captions = list(dict.fromkeys(load_training_captions(training)))
    table = sentence_transformer_embedder(training.embedding_model)(captions)
    rows = []
    for name in args.variants:
        torch.manual_seed(0)
        steps = args.lm_steps if name != "smollm2-30L-lora" else min(args.lm_steps, args.full_lm_steps)
        config = YDecoderConfig(embedding_dim=table.shape[1], **LM_VARIANTS[name])
        decoder = YDecoder.build(config, captions=captions)
        started = time.perf_counter()
        history = train_decoder(decoder, table, captions, training, max_steps=steps, progress=False)
        seconds = (time.perf_counter() - started) / steps
        started = time.perf_counter()
        decoder.decode(table[:32])
        decode_ms = (time.perf_counter() - started) / 32 * 1000
        reports = {std: reconstruction_report(decoder, table, captions, noise_std=std) for std in (0.0, 0.05)}
        rows.append({
            "variant": name, "trainable_parameters": decoder.num_trainable_parameters(),
            "total_parameters": sum(p.numel() for p in decoder.parameters()), "steps": steps,
            "seconds_per_step": seconds, "final_loss": history[-1]["loss"], "decode_ms_per_caption": decode_ms,
            "exact_clean": reports[0.0]["exact_match"], "exact_noise_0.05": reports[0.05]["exact_match"],
        })
        logger.info("%s", rows[-1])
    write_json(out / "lm_choice.json", rows)
    intro = (
        f"Y-decoder language model on the {len(captions)} distinct stream captions (batch 32, frozen MiniLM "
        f"embeddings, noise std 0.04 in training; torch threads: {torch.get_num_threads()}).\n"
    )
    header = (
        "| LM | trainable / total params | steps | s/step | final loss | decode ms/caption | exact (clean) "
        "| exact (noise 0.05) |"
    )
    lines = [intro, header, "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(
            f"| {r['variant']} | {r['trainable_parameters'] / 1e6:.2f} M / {r['total_parameters'] / 1e6:.1f} M | "
            f"{r['steps']} | {r['seconds_per_step']:.2f} | {r['final_loss']:.3f} | {r['decode_ms_per_caption']:.1f} | "
            f"{r['exact_clean']:.1%} | {r['exact_noise_0.05']:.1%} |"
        )
    atomic_write_text(out / "lm_choice.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["pipeline", "lm-choice"])
    parser.add_argument("--output_dir", default=None, help="default: runs/decoding-pipeline or runs/decoder-lm-choice")
    parser.add_argument("--steps", nargs="+", choices=list(STEPS), default=list(STEPS), help="pipeline steps to run")
    parser.add_argument("--num_train_streams", type=int, default=120)
    parser.add_argument("--num_validation_streams", type=int, default=12)
    parser.add_argument("--window_frames", type=int, default=4)
    parser.add_argument("--event_stride", type=int, default=1, help="keep every n-th window showing an event")
    parser.add_argument("--idle_stride", type=int, default=4, help="keep every n-th window showing no event")
    parser.add_argument("--variants", nargs="+", choices=list(LM_VARIANTS), default=list(LM_VARIANTS))
    parser.add_argument("--lm_steps", type=int, default=300, help="lm-choice: training steps per variant")
    parser.add_argument("--full_lm_steps", type=int, default=20,
                        help="lm-choice: steps of the 30-layer SmolLM2 (too slow for more on a CPU)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    default = "runs/decoding-pipeline" if args.command == "pipeline" else "runs/decoder-lm-choice"
    out = Path(args.output_dir or default)
    out.mkdir(parents=True, exist_ok=True)
    if args.command == "lm-choice":
        lm_choice(out, args)
        return 0
    for name, step in STEPS.items():
        if name in args.steps:
            started = time.perf_counter()
            step(out, args)
            logger.info("step %s done in %.0f s", name, time.perf_counter() - started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
