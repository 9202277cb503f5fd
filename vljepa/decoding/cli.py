"""Command-line entry points of the Y-decoder (subcommands of ``vljepa``, see :mod:`vljepa.cli`):

    vljepa train-decoder RECIPE.yaml [--field value ...]       -> train_decoder_main
    vljepa decode --model DIR --frames DIR_OR_VIDEO --mode {selective,ward,uniform} [--threshold T] [--fps F]
                                                                -> decode_main
    vljepa bench-decoding RECIPE.yaml [--field value ...]      -> bench_decoding_main

Each returns an exit status (0 on success, 2 on a configuration error).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import jepa_core  # noqa: F401  (torchvision workaround before timm)
from jepa_core.config import ConfigError, parse_config
from vljepa.data.images import BadInputError, BadInputReport

logger = logging.getLogger("vljepa")

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif", ".tif", ".tiff")


@dataclass
class DecodeArguments:
    """Arguments of ``vljepa decode``: timestamped captions of a folder of frames or a video."""

    model: str = field(metadata={"help": "Saved VL-JEPA model folder (its query-free predictions are decoded)."})
    frames: str = field(metadata={"help": "A folder of frames (sorted by file name) or a video/animated image file."})
    decoder: str | None = field(
        default=None, metadata={"help": "Y-decoder folder (default: the one saved with the model, <model>/decoder)."}
    )
    mode: Literal["selective", "ward", "uniform"] = field(
        default="selective",
        metadata={"help": "'selective': online, decode when the embedding drifts past --threshold; 'ward': "
                  "offline Ward segmentation, one decode per segment; 'uniform': decode at --rate_hz."},
    )
    fps: float | None = field(
        default=None,
        metadata={"help": "Frame rate of the input (frames per second). Required for a folder; a video's own "
                  "rate is used when omitted."},
    )
    threshold: float = field(default=0.2, metadata={"help": "Cosine-distance threshold of 'selective'."})
    max_gap_s: float | None = field(default=None, metadata={"help": "'selective': decode at least this often (s)."})
    smoothing_frames: int = field(default=2, metadata={"help": "'selective': causal smoothing window (frames)."})
    segments_per_second: float = field(default=0.35, metadata={"help": "'ward': segments per second of input."})
    rate_hz: float = field(default=1.0, metadata={"help": "'uniform': decodes per second."})
    window_frames: int = field(default=4, metadata={"help": "Frames per embedded window (as the model was trained)."})
    num_beams: int = field(default=1, metadata={"help": "Beam search width (1: greedy)."})
    max_new_tokens: int = field(default=24, metadata={"help": "Longest caption in tokens."})
    batch_size: int = field(default=32, metadata={"help": "Images per model call."})
    output_json: str | None = field(default=None, metadata={"help": "Also write the captions to this JSON file."})
    on_bad_input: Literal["error", "skip"] = field(
        default="error",
        metadata={"help": "A frame file that cannot be decoded: 'error' stops naming the file; 'skip' leaves it "
                  "out, lists it on stderr and, with --output_json, in bad_inputs.json beside that file."},
    )

    def __post_init__(self) -> None:
        if self.fps is not None and self.fps <= 0:
            raise ValueError(f"fps must be > 0, got {self.fps}")
        if self.rate_hz <= 0 or self.segments_per_second <= 0:
            raise ValueError("rate_hz and segments_per_second must be > 0")
        if self.window_frames < 1 or self.batch_size < 1 or self.num_beams < 1:
            raise ValueError("window_frames, batch_size and num_beams must be >= 1")


def read_frames(
    path: str | Path, fps: float | None, *, on_bad_input: str = "error", report: BadInputReport | None = None
) -> tuple[list, float]:
    """Frames (PIL images) and their frame rate from a folder of images or a video/animated image file.

    Frame files are decoded by :func:`vljepa.data.images.decode_image`: a bad one raises naming the file
    (``"error"``) or is left out and recorded in ``report`` (``"skip"``; later frames keep their places).
    """
    from PIL import Image, ImageSequence

    from vljepa.data.images import decode_image

    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise ValueError(f"{path} holds no image files ({', '.join(IMAGE_SUFFIXES)})")
        if fps is None:
            raise ValueError(f"{path} is a folder of frames: give their frame rate with --fps")
        frames = [decode_image(file, on_bad_input=on_bad_input, report=report, context=f"frame {file}")
                  for file in files]
        frames = [frame for frame in frames if frame is not None]
        if not frames:
            raise ValueError(f"{path}: no frame could be decoded ({report.summary() if report else ''})")
        return frames, fps
    if not path.is_file():
        raise FileNotFoundError(f"--frames {path} is neither a folder nor a file")
    try:  # animated GIF / WebP / APNG: Pillow reads them without extra packages
        with Image.open(path) as animation:
            frames = [frame.convert("RGB") for frame in ImageSequence.Iterator(animation)]
            duration_ms = animation.info.get("duration")
        if len(frames) > 1:
            return frames, fps or (1000.0 / duration_ms if duration_ms else _need_fps(path))
    except OSError:
        pass
    try:
        import imageio.v3 as iio

        frames = [Image.fromarray(array).convert("RGB") for array in iio.imiter(path)]
        rate = fps or iio.immeta(path).get("fps") or _need_fps(path)
    except ImportError as error:
        raise ValueError(_NO_VIDEO_READER.format(path=path, error=error)) from error
    except (OSError, ValueError, RuntimeError) as error:
        raise ValueError(_NO_VIDEO_READER.format(path=path, error=error)) from error
    if not frames:
        raise ValueError(f"{path}: no frames could be read")
    return frames, float(rate)


_NO_VIDEO_READER = (
    "cannot read video {path}: {error}. Install a video reader (`pip install av` for imageio's PyAV plugin) "
    "or extract frames first, e.g. `ffmpeg -i {path} -vf fps=4 frames/%06d.png`, then pass --frames frames "
    "--fps 4."
)


def _need_fps(path: Path) -> float:
    raise ValueError(f"{path} does not record its frame rate: give it with --fps")


def decode_main(argv: Sequence[str]) -> int:
    """``vljepa decode``: print ``time  caption`` lines for a folder of frames or a video."""
    import torch

    from vljepa.decoding.decoder import YDecoder
    from vljepa.decoding.selective import caption_events, drift_events, uniform_events, ward_events
    from vljepa.decoding.stream_scoring import window_timestamps
    from vljepa.decoding.windows import stream_window_images
    from vljepa.persistence import load_pretrained

    try:
        (args,) = parse_config((DecodeArguments,), list(argv))
    except (ConfigError, ValueError) as error:
        print(f"vljepa decode: {error}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    bad_inputs = BadInputReport(max_examples=10_000)
    try:
        frames, fps = read_frames(args.frames, args.fps, on_bad_input=args.on_bad_input, report=bad_inputs)
    except BadInputError as error:
        print(f"vljepa decode: {error}", file=sys.stderr)
        return 2
    if bad_inputs.total:
        print(f"vljepa decode: {bad_inputs.summary()}: "
              + ", ".join(f"{e['where']} ({e['reason']})" for e in bad_inputs.examples), file=sys.stderr)
        if args.output_json:
            bad_inputs.write(Path(args.output_json).parent)
    model = load_pretrained(args.model)
    decoder = YDecoder.from_pretrained(args.decoder) if args.decoder else getattr(model, "decoder", None)
    if decoder is None:
        print(f"vljepa decode: {args.model} has no decoder/ subfolder; pass --decoder DIR (a folder written by "
              "`vljepa train-decoder`)", file=sys.stderr)
        return 2
    images = stream_window_images(frames, window_frames=args.window_frames)
    embeddings = model.embed_images(images, batch_size=args.batch_size).float()
    times = window_timestamps(len(frames), fps, window_frames=args.window_frames)
    if args.mode == "selective":
        events = drift_events(embeddings, times, threshold=args.threshold, max_gap_s=args.max_gap_s,
                              smoothing_frames=args.smoothing_frames)
    elif args.mode == "ward":
        count = max(1, round(args.segments_per_second * len(frames) / fps))
        events = ward_events(embeddings, times, num_segments=count)
    else:
        events = uniform_events(embeddings, times, rate_hz=args.rate_hz)

    def decode(batch: torch.Tensor) -> list[str]:
        return decoder.decode(batch, max_new_tokens=args.max_new_tokens, num_beams=args.num_beams)

    captions = caption_events(decode, events)
    for caption in captions:
        print(f"{caption.time:9.2f} s  {caption.text}")
    duration = len(frames) / fps
    print(f"# {len(captions)} decodes over {duration:.1f} s ({len(captions) / duration:.3f} per second)")
    if args.output_json:
        from jepa_core.rundir import write_json

        write_json(args.output_json, [caption.__dict__ for caption in captions])
    return 0


def train_decoder_main(argv: Sequence[str]) -> int:
    """``vljepa train-decoder RECIPE.yaml``: train and save a Y-decoder (``<output_dir>/decoder``)."""
    from jepa_core.cli import setup_logging
    from vljepa.decoding.training import DecoderTrainingArguments, YDecoderArguments, run_decoder_training

    try:
        model_args, args = parse_config((YDecoderArguments, DecoderTrainingArguments), list(argv))
        model_args.to_config()  # the config's own validation, before any work
    except (ConfigError, ValueError) as error:
        print(f"vljepa train-decoder: {error}", file=sys.stderr)
        return 2
    setup_logging(Path(args.output_dir) / "train_decoder.log")
    metrics = run_decoder_training(model_args, args, argv=["vljepa", "train-decoder", *argv])
    print(json.dumps({key: value for key, value in metrics.items() if not key.endswith("history")}, indent=2))
    print(f"decoder: {Path(args.output_dir) / 'decoder'}")
    return 0


def bench_decoding_main(argv: Sequence[str]) -> int:
    """``vljepa bench-decoding``: the selective-decoding sweep; prints the Markdown table it writes."""
    from jepa_core.cli import setup_logging
    from vljepa.decoding.benchmark import DecodingBenchmarkArguments, run_decoding_benchmark

    try:
        (args,) = parse_config((DecodingBenchmarkArguments,), list(argv))
    except (ConfigError, ValueError) as error:
        print(f"vljepa bench-decoding: {error}", file=sys.stderr)
        return 2
    setup_logging(Path(args.output_dir) / "bench_decoding.log")
    run_decoding_benchmark(args, argv=["vljepa", "bench-decoding", *argv])
    print((Path(args.output_dir) / "sweep.md").read_text())
    return 0
