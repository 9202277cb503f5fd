"""The selective-decoding benchmark (``vljepa bench-decoding``): CIDEr against decodes per second.

1. Generate two disjoint sets of procedural streams (``vljepa.data.streams``): *tuning* streams
   (seed ``tuning_seed``) and *test* streams (seed ``test_seed``); neither was seen in training.
2. Embed every stream per causal window of frames: a trained VL-JEPA model's query-free prediction
   (``embedding_source="model"``), or, for development only, the Y-embedding of the true annotation plus
   noise (``"oracle"``).
3. On the tuning streams, choose each selective policy's options (Ward: mean or medoid; drift: smoothing
   and maximum gap) by the decode reduction at matched CIDEr against uniform decoding at ``baseline_rate``.
4. On the test streams, sweep uniform rates, Ward segment rates and drift thresholds with those options;
   report CIDEr against decodes per second and the reduction at matched CIDEr.

Outputs in ``output_dir``: ``config.yaml`` / ``run_info.json``, ``sweep.md`` (the table for BENCHMARKS.md),
``sweep.json``, ``summary.json``, ``cider_vs_rate.png`` (test) and ``cider_vs_rate_tuning.png``,
``examples.md`` (decoded captions of one test stream beside its annotations).
"""

from __future__ import annotations

import itertools
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch

from jepa_core.rundir import atomic_write_text, write_json, write_run_metadata
from vljepa.decoding.stream_scoring import (
    PolicySetting,
    StreamEmbeddings,
    SweepPoint,
    evaluate_setting,
    oracle_stream_embeddings,
    plot_sweep,
    reduction_at_matched_cider,
    sweep,
    sweep_table,
    window_timestamps,
)
from vljepa.decoding.windows import stream_window_images

logger = logging.getLogger(__name__)

MINILM = "sentence-transformers/all-MiniLM-L6-v2"


@dataclass
class DecodingBenchmarkArguments:
    """Arguments of ``vljepa bench-decoding`` (recipe ``recipes/vljepa/ydecoder-bench-streams.yaml``)."""

    output_dir: str = field(default="runs/bench-decoding", metadata={"help": "Run directory for all outputs."})
    embedding_source: Literal["model", "oracle"] = field(
        default="model",
        metadata={"help": "'model': a trained VL-JEPA's predictions; 'oracle': Y-embedding of the true "
                  "annotation + noise (development stand-in, not a result)."},
    )
    model: str | None = field(default=None, metadata={"help": "Saved VL-JEPA model folder (embedding_source=model)."})
    decoder: str | None = field(default=None, metadata={"help": "Y-decoder folder (default: <model>/decoder)."})
    window_frames: int = field(default=4, metadata={"help": "Frames per embedded window (montage); 1 = single frames."})
    oracle_embedding_model: str = field(default=MINILM, metadata={"help": "Sentence encoder of the oracle."})
    oracle_noise_std: float = field(default=0.05, metadata={"help": "Per-dimension noise std of the oracle."})
    idle_text: str = field(default="nothing happens", metadata={"help": "Oracle text outside annotations."})
    stream_split: str = field(default="test", metadata={"help": "Split of the generated streams."})
    tuning_seed: int = field(default=1, metadata={"help": "Stream seed of the tuning set."})
    test_seed: int = field(default=2, metadata={"help": "Stream seed of the test set (never used for tuning)."})
    num_streams: int = field(default=12, metadata={"help": "Streams in each of the tuning and test sets."})
    stream_num_frames: int = field(default=240, metadata={"help": "Frames per stream."})
    stream_fps: float = field(default=4.0, metadata={"help": "Frames per second."})
    stream_min_segment_frames: int = field(default=8, metadata={"help": "Shortest event/idle segment (frames)."})
    stream_max_segment_frames: int = field(default=24, metadata={"help": "Longest event/idle segment (frames)."})
    stream_event_rate: float = field(default=0.8, metadata={"help": "Chance that a segment holds an event."})
    uniform_rates: list[float] = field(
        default_factory=lambda: [0.1, 0.15, 0.2, 0.25, 0.35, 0.5, 0.7, 1.0, 2.0, 4.0],
        metadata={"help": "Uniform decode rates (Hz) of the baseline curve."},
    )
    ward_rates: list[float] = field(
        default_factory=lambda: [0.05, 0.1, 0.15, 0.2, 0.25, 0.35, 0.5, 0.7, 1.0, 1.5],
        metadata={"help": "Ward segments per second of stream (one decode each)."},
    )
    drift_thresholds: list[float] = field(
        default_factory=lambda: [0.8, 0.6, 0.45, 0.35, 0.25, 0.18, 0.12, 0.08, 0.05, 0.03],
        metadata={"help": "Cosine-distance thresholds of the online drift policy."},
    )
    ward_representatives: list[str] = field(
        default_factory=lambda: ["mean", "medoid"], metadata={"help": "Ward options tried on the tuning set."}
    )
    drift_smoothing_frames: list[int] = field(
        default_factory=lambda: [1, 2, 4], metadata={"help": "Drift smoothing windows tried on the tuning set."}
    )
    drift_max_gaps: list[float] = field(
        default_factory=lambda: [0.0, 8.0], metadata={"help": "Drift maximum gaps (s; 0 = none) tried on tuning."}
    )
    baseline_rate: float = field(default=1.0, metadata={"help": "Uniform rate (Hz) whose CIDEr is matched (paper: 1)."})
    match_tolerance: float = field(
        default=0.02,
        metadata={"help": "Relative CIDEr shortfall still counted as matched (0.02: within 2%); strict matching "
                  "(0) is reported too."},
    )
    num_beams: int = field(default=1, metadata={"help": "Beams of the decoder (1: greedy)."})
    max_new_tokens: int = field(default=24, metadata={"help": "Longest decoded caption (tokens)."})
    batch_size: int = field(default=64, metadata={"help": "Images per model call and embeddings per decode call."})
    num_threads: int | None = field(default=None, metadata={"help": "torch CPU threads (None: torch default)."})

    def __post_init__(self) -> None:
        for name in ("uniform_rates", "ward_rates", "drift_thresholds"):
            values = getattr(self, name)
            if isinstance(values, str):  # a YAML/flag string "0.1,0.2"
                values = [float(v) for v in values.split(",") if v.strip()]
            setattr(self, name, [float(v) for v in values])
            if len(values) < 2:
                raise ValueError(f"{name} needs at least two values to draw a curve")
        if self.embedding_source == "model" and not self.model:
            raise ValueError("embedding_source='model' needs --model (a saved VL-JEPA folder)")
        if self.embedding_source == "oracle" and not self.decoder:
            raise ValueError("embedding_source='oracle' needs --decoder (a saved Y-decoder folder)")
        if self.tuning_seed == self.test_seed:
            raise ValueError("tuning_seed and test_seed must differ: test streams must be unseen by tuning")
        if min(self.uniform_rates) > self.baseline_rate or max(self.uniform_rates) < self.baseline_rate:
            raise ValueError(f"baseline_rate {self.baseline_rate} must lie within uniform_rates")
        if not 0.0 <= self.match_tolerance < 1.0:
            raise ValueError(f"match_tolerance must be in [0, 1), got {self.match_tolerance}")
        if self.window_frames < 1 or self.num_streams < 1 or self.batch_size < 1:
            raise ValueError("need window_frames >= 1, num_streams >= 1 and batch_size >= 1")

    def stream_options(self, seed: int) -> dict[str, Any]:
        return {
            "seed": seed, "num_streams": self.num_streams, "num_frames": self.stream_num_frames,
            "fps": self.stream_fps, "min_segment_frames": self.stream_min_segment_frames,
            "max_segment_frames": self.stream_max_segment_frames, "event_rate": self.stream_event_rate,
        }


def embed_streams(
    dataset: Any, *, embed_images: Callable[[list], torch.Tensor], window_frames: int
) -> list[StreamEmbeddings]:
    """Per-window embeddings of every stream of a ``stream``-schema dataset."""
    streams = []
    for row in dataset:
        frames = row["frames"]
        embeddings = embed_images(stream_window_images(frames, window_frames=window_frames)).float()
        timestamps = window_timestamps(len(frames), row["fps"], window_frames=window_frames).float()
        streams.append(StreamEmbeddings(row["stream_id"], timestamps, embeddings, len(frames) / row["fps"],
                                        list(row["annotations"])))
    return streams


def oracle_streams(dataset: Any, args: DecodingBenchmarkArguments, seed: int) -> list[StreamEmbeddings]:
    from vljepa.decoding.training import sentence_transformer_embedder

    embed = sentence_transformer_embedder(args.oracle_embedding_model)
    generator = torch.Generator().manual_seed(seed)
    return [
        oracle_stream_embeddings(
            embed, stream_id=row["stream_id"], num_frames=len(row["frames"]), fps=row["fps"],
            annotations=row["annotations"], idle_text=args.idle_text, noise_std=args.oracle_noise_std,
            generator=generator,
        )
        for row in dataset.select_columns(["stream_id", "frames", "fps", "annotations"])
    ]


def policy_settings(policy: str, values: Sequence[float], options: dict[str, Any]) -> list[PolicySetting]:
    return [PolicySetting(policy=policy, value=value, options=dict(options)) for value in values]


def selective_option_grid(args: DecodingBenchmarkArguments) -> dict[str, list[dict[str, Any]]]:
    drift = [
        {"smoothing_frames": smoothing, "max_gap_s": gap or None}
        for smoothing, gap in itertools.product(args.drift_smoothing_frames, args.drift_max_gaps)
    ]
    return {"ward": [{"representative": r} for r in args.ward_representatives], "drift": drift}


def _knob_values(args: DecodingBenchmarkArguments, policy: str) -> list[float]:
    return {"ward": args.ward_rates, "drift": args.drift_thresholds}[policy]


def tune_selective(
    streams: Sequence[StreamEmbeddings], decode: Callable[[torch.Tensor], list[str]], args: DecodingBenchmarkArguments
) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]], list[SweepPoint]]:
    """Pick each selective policy's options on the tuning streams: the largest reduction at matched CIDEr
    (ties: the higher mean CIDEr over the sweep). Returns choices, the trial log and the chosen points."""
    baseline = sweep(streams, decode, policy_settings("uniform", args.uniform_rates, {}))
    chosen: dict[str, dict[str, Any]] = {}
    trials: list[dict[str, Any]] = []
    points = list(baseline)
    for policy, grid in selective_option_grid(args).items():
        best_key, best_points = None, []
        for options in grid:
            curve = sweep(streams, decode, policy_settings(policy, _knob_values(args, policy), options))
            match = reduction_at_matched_cider(baseline, curve, baseline_rate=args.baseline_rate,
                                               tolerance=args.match_tolerance)
            mean_cider = sum(p.cider for p in curve) / len(curve)
            key = (match["reduction"] or 0.0, mean_cider)
            trials.append({"policy": policy, "options": options, **match, "mean_cider": mean_cider})
            logger.info("tuning %s %s: reduction %s, mean CIDEr %.3f", policy, options, match["reduction"], mean_cider)
            if best_key is None or key > best_key:
                best_key, best_points, chosen[policy] = key, curve, options
        points += best_points
    return chosen, trials, points


def _examples(streams: Sequence[StreamEmbeddings], decode, settings: Sequence[PolicySetting]) -> str:
    stream = streams[0]
    lines = [f"# Decoded captions, test stream `{stream.stream_id}`\n", "## Annotations\n"]
    lines += [f"- {a['start']:.2f}-{a['end']:.2f} s: {a['text']}" for a in stream.annotations]
    for setting in settings:
        _, captions = evaluate_setting([stream], decode, setting)
        lines += [f"\n## `{setting.label}`: {len(captions[stream.stream_id])} decodes\n"]
        lines += [f"- {c.time:.2f} s: {c.text}" for c in captions[stream.stream_id]]
    return "\n".join(lines) + "\n"


def run_decoding_benchmark(args: DecodingBenchmarkArguments, *, argv: list[str] | None = None) -> dict[str, Any]:
    """Run the whole benchmark (see the module docstring) and return the summary."""
    from vljepa.data import load_vl_dataset
    from vljepa.decoding.decoder import YDecoder

    if args.num_threads:
        torch.set_num_threads(args.num_threads)
    out = Path(args.output_dir)
    write_run_metadata(out, {"bench_decoding": args}, argv=argv)
    started = time.perf_counter()
    decoder_dir = Path(args.decoder) if args.decoder else Path(str(args.model)) / "decoder"
    decoder = YDecoder.from_pretrained(decoder_dir)

    def decode(embeddings: torch.Tensor) -> list[str]:
        return decoder.decode(embeddings, max_new_tokens=args.max_new_tokens, num_beams=args.num_beams,
                              batch_size=args.batch_size)

    sets: dict[str, list[StreamEmbeddings]] = {}
    model = None
    if args.embedding_source == "model":
        from vljepa.persistence import load_pretrained

        model = load_pretrained(str(args.model))
    for phase, seed in (("tuning", args.tuning_seed), ("test", args.test_seed)):
        dataset = load_vl_dataset("streams", args.stream_split, **args.stream_options(seed))
        if model is not None:
            sets[phase] = embed_streams(
                dataset, window_frames=args.window_frames,
                embed_images=lambda images: model.embed_images(images, batch_size=args.batch_size),
            )
        else:
            sets[phase] = oracle_streams(dataset, args, seed)
        logger.info("embedded %d %s streams", len(sets[phase]), phase)

    chosen, trials, tuning_points = tune_selective(sets["tuning"], decode, args)
    test_points = sweep(sets["test"], decode, policy_settings("uniform", args.uniform_rates, {}))
    uniform_points = list(test_points)
    reductions, strict = {}, {}
    for policy, options in chosen.items():
        curve = sweep(sets["test"], decode, policy_settings(policy, _knob_values(args, policy), options))
        test_points += curve
        reductions[policy] = reduction_at_matched_cider(
            uniform_points, curve, baseline_rate=args.baseline_rate, tolerance=args.match_tolerance
        )
        strict[policy] = reduction_at_matched_cider(uniform_points, curve, baseline_rate=args.baseline_rate)
    summary = {
        "embedding_source": args.embedding_source, "model": args.model, "decoder": str(decoder_dir),
        "chosen_options": chosen, "reduction_at_matched_cider": reductions, "reduction_strict": strict,
        "num_test_annotations": sum(len(s.annotations) for s in sets["test"]),
        "test_duration_s": sum(s.duration_s for s in sets["test"]), "seconds": time.perf_counter() - started,
    }
    write_json(out / "summary.json", summary)
    write_json(out / "sweep.json", {"test": [asdict(p) for p in test_points],
                                    "tuning": [asdict(p) for p in tuning_points], "tuning_trials": trials})
    atomic_write_text(out / "sweep.md", _markdown(args, summary, test_points, tuning_points))
    plot_sweep(test_points, out / "cider_vs_rate.png", title=f"test streams (seed {args.test_seed})")
    plot_sweep(tuning_points, out / "cider_vs_rate_tuning.png", title=f"tuning streams (seed {args.tuning_seed})")
    showcase = [PolicySetting("uniform", args.baseline_rate)] + [
        PolicySetting(policy, _knob_values(args, policy)[len(_knob_values(args, policy)) // 2], options)
        for policy, options in chosen.items()
    ]
    atomic_write_text(out / "examples.md", _examples(sets["test"], decode, showcase))
    return summary


def _markdown(args, summary, test_points, tuning_points) -> str:
    intro = (
        f"Selective decoding on generated streams ({args.embedding_source} embeddings; {args.num_streams} test "
        f"streams of {args.stream_num_frames / args.stream_fps:g} s, seed {args.test_seed}; options tuned on "
        f"seed {args.tuning_seed}). CIDEr-D: each annotation against the decoded caption nearest in time.\n"
    )
    header = (
        f"| policy | options (tuned) | matched CIDEr of uniform @ {args.baseline_rate:g} Hz | decodes/s to match "
        "| reduction |"
    )
    lines = [intro, header, "|---|---|---|---:|---:|"]
    for policy in summary["chosen_options"]:
        for match in (summary["reduction_at_matched_cider"][policy], summary["reduction_strict"][policy]):
            rate = "not reached" if match["selective_rate"] is None else f"{match['selective_rate']:.3f}"
            reduction = "-" if match["reduction"] is None else (
                f"{'>=' if match['lower_bound'] else ''}{match['reduction']:.2f}x"
            )
            cider = "-" if match["baseline_cider"] is None else (
                f"{match['baseline_cider']:.3f}" if not match["tolerance"]
                else f"within {match['tolerance']:.0%} of {match['baseline_cider']:.3f}"
            )
            options = json.dumps(summary["chosen_options"][policy])
            lines.append(f"| {policy} | `{options}` | {cider} | {rate} | {reduction} |")
    lines += ["", "Test sweep:", "", sweep_table(test_points), "Tuning sweep (chosen options):", "",
              sweep_table(tuning_points)]
    return "\n".join(lines)
