"""Latency of one query on the CPU: VL-JEPA's embedding answer, with and without decoding to text, and a
token-generating VLM of the same parts as a reference.

    HF_HUB_OFFLINE=1 .venv/bin/python -m bench.vljepa_latency --model runs/decoding-pipeline/vljepa/model \\
        --decoder runs/decoding-pipeline/decoder/decoder --threads 2 --output_dir runs/latency

Per query (batch of one image and one question), median over ``--queries`` runs after warm-up:

* ``embedding answer``: ``model.answer_scores`` (X-encoder, predictor, cosine against the Y-embeddings of
  the candidate answers, which a frozen Y-encoder memoises): VL-JEPA's answer without any text generation;
* ``embedding + decode``: ``model.predict`` then the Y-decoder writes ``--tokens`` tokens (EOS forbidden
  before that, so every run does the same work);
* ``token-generating VLM (reference)``: the same X-encoder, its visual tokens projected into the full
  SmolLM2-135M-Instruct, which then generates ``--tokens`` tokens: the cost of answering by generation with a
  language model of this size (weights untrained: latency does not depend on them).

Without ``--model`` a VL-JEPA is built from the default config (bundled EfficientNet-Lite0, 2 SmolLM2
layers, MiniLM); without ``--decoder`` a default (untrained) Y-decoder of the same size is built. Both wall
time and process CPU time are recorded; on a shared machine the CPU times are the steadier numbers.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import jepa_core  # noqa: F401  (environment shims first)

logger = logging.getLogger("bench.vljepa_latency")


def measure(run: Callable[[], object], *, repeats: int, warmup: int = 3) -> dict[str, float]:
    """Median wall-clock and process-CPU milliseconds of ``run()`` over ``repeats`` calls."""
    for _ in range(warmup):
        run()
    wall, cpu = [], []
    for _ in range(repeats):
        wall_start, cpu_start = time.perf_counter(), time.process_time()
        run()
        wall.append((time.perf_counter() - wall_start) * 1000)
        cpu.append((time.process_time() - cpu_start) * 1000)
    return {"wall_ms_median": statistics.median(wall), "wall_ms_p90": sorted(wall)[int(0.9 * (len(wall) - 1))],
            "cpu_ms_median": statistics.median(cpu)}


def query_image(window_frames: int):
    from vljepa.data import load_vl_dataset
    from vljepa.decoding.windows import stream_window_images

    stream = load_vl_dataset("streams", "test", seed=3, num_streams=1, num_frames=16, use_cache=False)[0]
    return stream_window_images(stream["frames"], window_frames=window_frames)[-1]


class GenerativeReference:
    """X-encoder tokens -> linear projection -> a causal LM that generates ``tokens`` new tokens."""

    def __init__(self, x_encoder, lm_id: str):
        import torch
        from transformers import AutoModelForCausalLM

        from vljepa.persistence import resolve

        self.x_encoder = x_encoder
        self.lm = AutoModelForCausalLM.from_pretrained(resolve(lm_id), dtype=torch.float32).eval()
        width = self.lm.get_input_embeddings().embedding_dim
        self.projection = torch.nn.Linear(x_encoder.hidden_size, width)
        self.prompt = torch.randint(0, self.lm.config.vocab_size, (1, 8))  # stands for a short question

    def __call__(self, image, tokens: int):
        import torch

        with torch.no_grad():
            visual, _ = self.x_encoder.encode([image])
            prefix = torch.cat([self.projection(visual.float()), self.lm.get_input_embeddings()(self.prompt)], dim=1)
            return self.lm.generate(
                inputs_embeds=prefix, attention_mask=torch.ones(prefix.shape[:2], dtype=torch.long),
                max_new_tokens=tokens, min_new_tokens=tokens, do_sample=False,
                pad_token_id=self.lm.config.eos_token_id,
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="saved VL-JEPA folder (default: built from the default config)")
    parser.add_argument("--decoder", default=None, help="saved Y-decoder folder (default: an untrained default one)")
    parser.add_argument("--window_frames", type=int, default=4, help="frames tiled into the query image")
    parser.add_argument("--queries", type=int, default=30, help="timed queries per variant")
    parser.add_argument("--tokens", type=int, default=12, help="generated tokens per answer (decoder and VLM)")
    parser.add_argument("--reference_lm", default="HuggingFaceTB/SmolLM2-135M-Instruct")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--output_dir", default="runs/latency")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    import torch

    from jepa_core.rundir import atomic_write_text, write_json
    from vljepa.decoding.decoder import YDecoder, YDecoderConfig

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.model:
        from vljepa.persistence import load_pretrained

        model = load_pretrained(args.model)
    else:
        from vljepa.configuration import VLJEPAConfig
        from vljepa.modeling import VLJEPAModel

        model = VLJEPAModel.from_config(VLJEPAConfig(
            x_encoder_processor_overrides={"pretrained_cfg": {"input_size": [3, 128, 128], "crop_pct": 1.0}},
            y_encoder_frozen=True,
        )).eval()
    if args.decoder:
        decoder = YDecoder.from_pretrained(args.decoder)
    else:
        decoder = YDecoder.build(YDecoderConfig(embedding_dim=model.config.embedding_dim), captions=["a caption"])
    image = query_image(args.window_frames)
    question = ""  # the query-free caption embedding, as in the stream benchmark
    candidates = ["a red circle appears", "the blue square moves left", "nothing happens", "a green star appears"]
    reference = GenerativeReference(model.x_encoder, args.reference_lm)

    results = {
        "embedding answer": measure(lambda: model.answer_scores([image], [question], candidates, batch_size=1),
                                    repeats=args.queries),
        "embedding + decode": measure(
            lambda: decoder.decode(model.predict([image], [question], batch_size=1), max_new_tokens=args.tokens,
                                   min_new_tokens=args.tokens),
            repeats=args.queries,
        ),
        "decode only": measure(
            lambda: decoder.decode(torch.randn(1, model.config.embedding_dim), max_new_tokens=args.tokens,
                                   min_new_tokens=args.tokens),
            repeats=args.queries,
        ),
        "token-generating VLM (reference)": measure(lambda: reference(image, args.tokens), repeats=args.queries),
    }
    info = {"threads": torch.get_num_threads(), "tokens": args.tokens, "queries": args.queries,
            "image_size": list(image.size), "model": args.model or "default config (untrained)",
            "decoder": args.decoder or "default config (untrained)", "reference_lm": args.reference_lm,
            "decoder_parameters": sum(p.numel() for p in decoder.parameters()),
            "reference_lm_parameters": sum(p.numel() for p in reference.lm.parameters())}
    out = Path(args.output_dir)
    write_json(out / "latency.json", {"info": info, "results": results})
    intro = (
        f"Per-query latency on CPU ({info['threads']} torch threads, batch 1, {args.tokens} generated tokens, "
        f"median of {args.queries}).\n"
    )
    lines = [
        intro,
        "| variant | wall ms (median) | wall ms (p90) | CPU ms (median) |",
        "|---|---:|---:|---:|",
    ]
    lines += [f"| {name} | {r['wall_ms_median']:.1f} | {r['wall_ms_p90']:.1f} | {r['cpu_ms_median']:.1f} |"
              for name, r in results.items()]
    atomic_write_text(out / "latency.md", "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
