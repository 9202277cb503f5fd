"""Scoring decoding policies on annotated streams (the paper's selective-decoding protocol).

Protocol: a policy turns a stream's embeddings into decode events; the decoder turns the events into
timed captions. Each annotation ``{start, end, text}`` is paired with the decoded caption nearest in time
to the annotation's midpoint (ties: the earlier caption); CIDEr-D is computed over all annotations of all
streams together. Sweeping each policy's knob (uniform rate, Ward segments per second, drift threshold)
gives CIDEr against decodes per second; :func:`reduction_at_matched_cider` reads off how many times fewer
decodes a selective policy needs to match the uniform baseline's CIDEr at a given rate.

Example::

    >>> captions = {"s0": [TimedCaption(time=1.0, text="a red circle appears", start=0.5, end=1.5)]}
    >>> annotations = {"s0": [{"start": 0.5, "end": 1.5, "text": "a red circle appears"}]}
    >>> nearest_in_time_pairs(captions, annotations)
    ({('s0', 0): 'a red circle appears'}, {('s0', 0): ['a red circle appears']})
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from eval.captioning import cider
from vljepa.decoding.selective import (
    DecodeEvent,
    TimedCaption,
    caption_events,
    drift_events,
    uniform_events,
    ward_events,
)

PolicyName = Literal["uniform", "ward", "drift"]


@dataclass
class StreamEmbeddings:
    """One stream's embeddings ``[T, D]`` at ``timestamps`` ``[T]`` (seconds), with its annotations."""

    stream_id: str
    timestamps: torch.Tensor
    embeddings: torch.Tensor
    duration_s: float
    annotations: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.embeddings.ndim != 2 or self.timestamps.shape != (self.embeddings.shape[0],):
            raise ValueError(
                f"stream {self.stream_id}: need embeddings [T, D] and timestamps [T], got "
                f"{list(self.embeddings.shape)} and {list(self.timestamps.shape)}"
            )
        if self.duration_s <= 0:
            raise ValueError(f"stream {self.stream_id}: duration_s must be > 0, got {self.duration_s}")


def window_timestamps(num_frames: int, fps: float, *, window_frames: int = 1) -> torch.Tensor:
    """Centre times ``[T]`` of the causal windows ``[t - w + 1, t]`` of ``w`` frames ending at each frame
    (frame ``i`` spans ``[i / fps, (i + 1) / fps)``; windows are truncated at the stream start)."""
    ends = torch.arange(num_frames, dtype=torch.float64)
    starts = (ends - (window_frames - 1)).clamp(min=0)
    return ((starts + ends + 1) / 2) / fps


def oracle_stream_embeddings(
    embed_texts: Callable[[Sequence[str]], torch.Tensor],
    *,
    stream_id: str,
    num_frames: int,
    fps: float,
    annotations: Sequence[Mapping[str, Any]],
    idle_text: str,
    noise_std: float,
    generator: torch.Generator,
) -> StreamEmbeddings:
    """A development stand-in for a model: each frame gets the Y-embedding of the annotation covering it
    (``idle_text`` outside annotations), L2-normalised, plus N(0, noise_std^2) noise per dimension."""
    timestamps = window_timestamps(num_frames, fps)
    texts = [idle_text] * num_frames
    for item in annotations:
        for t in range(num_frames):
            if item["start"] <= float(timestamps[t]) < item["end"]:
                texts[t] = item["text"]
    unique = list(dict.fromkeys(texts))
    table = torch.nn.functional.normalize(embed_texts(unique).float(), dim=-1)
    rows = table[torch.tensor([unique.index(text) for text in texts])]
    rows = rows + noise_std * torch.randn(rows.shape, generator=generator)
    return StreamEmbeddings(stream_id, timestamps.float(), rows, num_frames / fps, [dict(a) for a in annotations])


def nearest_in_time_pairs(
    captions: Mapping[str, Sequence[TimedCaption]], annotations: Mapping[str, Sequence[Mapping[str, Any]]]
) -> tuple[dict[tuple[str, int], str], dict[tuple[str, int], list[str]]]:
    """``candidates`` and ``references`` keyed by ``(stream_id, annotation index)``: each annotation's
    reference text and the caption nearest in time to its midpoint."""
    candidates: dict[tuple[str, int], str] = {}
    references: dict[tuple[str, int], list[str]] = {}
    for stream_id, items in annotations.items():
        if not items:
            continue
        decoded = sorted(captions.get(stream_id, []), key=lambda c: c.time)
        if not decoded:
            raise ValueError(f"stream {stream_id} has annotations but no decoded caption")
        times = [c.time for c in decoded]
        for index, item in enumerate(items):
            midpoint = (item["start"] + item["end"]) / 2
            right = bisect.bisect_left(times, midpoint)
            options = [i for i in (right - 1, right) if 0 <= i < len(times)]
            best = min(options, key=lambda i: (abs(times[i] - midpoint), i))
            candidates[(stream_id, index)] = decoded[best].text
            references[(stream_id, index)] = [item["text"]]
    return candidates, references


def stream_cider(
    captions: Mapping[str, Sequence[TimedCaption]], annotations: Mapping[str, Sequence[Mapping[str, Any]]]
) -> float:
    """CIDEr-D of the nearest-in-time protocol over all annotations of all streams."""
    candidates, references = nearest_in_time_pairs(captions, annotations)
    if not candidates:
        raise ValueError("no annotations to score")
    return cider(candidates, references)


@dataclass
class PolicySetting:
    """One point of a sweep: a policy and the value of its knob."""

    policy: PolicyName = field(metadata={"help": "'uniform', 'ward' or 'drift'."})
    value: float = field(metadata={"help": "Hz for uniform; segments per second for ward; threshold for drift."})
    options: dict[str, Any] = field(default_factory=dict, metadata={"help": "Extra keyword arguments."})

    def events(self, stream: StreamEmbeddings) -> list[DecodeEvent]:
        if self.policy == "uniform":
            return uniform_events(stream.embeddings, stream.timestamps, rate_hz=self.value, **self.options)
        if self.policy == "ward":
            segments = max(1, round(self.value * stream.duration_s))
            return ward_events(stream.embeddings, stream.timestamps, num_segments=segments, **self.options)
        if self.policy == "drift":
            return drift_events(stream.embeddings, stream.timestamps, threshold=self.value, **self.options)
        raise ValueError(f"unknown policy {self.policy!r}; choose uniform, ward or drift")

    @property
    def label(self) -> str:
        extra = "".join(f", {k}={v}" for k, v in sorted(self.options.items()))
        knob = {"uniform": "rate_hz", "ward": "segments_per_s", "drift": "threshold"}[self.policy]
        return f"{self.policy}({knob}={self.value:g}{extra})"


@dataclass
class SweepPoint:
    """Result of one setting over all streams."""

    policy: str
    label: str
    value: float
    decodes_per_second: float
    cider: float
    num_decodes: int


def evaluate_setting(
    streams: Sequence[StreamEmbeddings], decode: Callable[[torch.Tensor], list[str]], setting: PolicySetting
) -> tuple[SweepPoint, dict[str, list[TimedCaption]]]:
    """Run ``setting`` on every stream, decode all events in one batch and score them."""
    per_stream = [setting.events(stream) for stream in streams]
    flat = [event for events in per_stream for event in events]
    captions = caption_events(decode, flat)
    by_stream: dict[str, list[TimedCaption]] = {}
    position = 0
    for stream, events in zip(streams, per_stream):
        by_stream[stream.stream_id] = captions[position : position + len(events)]
        position += len(events)
    annotations = {stream.stream_id: stream.annotations for stream in streams}
    duration = sum(stream.duration_s for stream in streams)
    point = SweepPoint(
        policy=setting.policy, label=setting.label, value=setting.value, decodes_per_second=len(flat) / duration,
        cider=stream_cider(by_stream, annotations), num_decodes=len(flat),
    )
    return point, by_stream


def sweep(
    streams: Sequence[StreamEmbeddings],
    decode: Callable[[torch.Tensor], list[str]],
    settings: Sequence[PolicySetting],
) -> list[SweepPoint]:
    """:func:`evaluate_setting` for each setting."""
    return [evaluate_setting(streams, decode, setting)[0] for setting in settings]


def _curve(points: Sequence[SweepPoint]) -> tuple[np.ndarray, np.ndarray]:
    ordered = sorted(points, key=lambda p: p.decodes_per_second)
    return np.array([p.decodes_per_second for p in ordered]), np.array([p.cider for p in ordered])


def cider_at_rate(points: Sequence[SweepPoint], rate: float) -> float | None:
    """A curve's CIDEr at ``rate`` decodes/s, linearly interpolated in log rate (None outside its range)."""
    rates, scores = _curve(points)
    if rates.size == 0 or not rates[0] <= rate <= rates[-1]:
        return None
    return float(np.interp(math.log(rate), np.log(rates), scores))


def rate_to_reach(points: Sequence[SweepPoint], target: float) -> float | None:
    """The lowest rate at which a curve (interpolated in log rate) first reaches CIDEr ``target``."""
    rates, scores = _curve(points)
    if rates.size == 0:
        return None
    if scores[0] >= target:
        return float(rates[0])
    for i in range(1, rates.size):
        if scores[i] >= target:
            fraction = (target - scores[i - 1]) / (scores[i] - scores[i - 1])
            return float(math.exp(math.log(rates[i - 1]) + fraction * math.log(rates[i] / rates[i - 1])))
    return None


def reduction_at_matched_cider(
    baseline: Sequence[SweepPoint], selective: Sequence[SweepPoint], *, baseline_rate: float, tolerance: float = 0.0
) -> dict[str, float | None]:
    """How many times fewer decodes ``selective`` needs to match ``baseline``'s CIDEr at ``baseline_rate``.

    Matching means reaching ``(1 - tolerance)`` times the baseline's CIDEr (``tolerance=0``: strictly equal
    or better). ``reduction`` is None when the selective curve never gets there or the rate is outside the
    baseline sweep; when the selective curve is already there at its lowest rate, the reduction is a
    lower bound (``lower_bound`` is True).
    """
    if not 0.0 <= tolerance < 1.0:
        raise ValueError(f"tolerance must be in [0, 1), got {tolerance}")
    baseline_cider = cider_at_rate(baseline, baseline_rate)
    if baseline_cider is None:
        return {"baseline_rate": baseline_rate, "baseline_cider": None, "tolerance": tolerance,
                "selective_rate": None, "reduction": None, "lower_bound": None}
    reached = rate_to_reach(selective, baseline_cider * (1.0 - tolerance))
    lowest = min(p.decodes_per_second for p in selective)
    return {
        "baseline_rate": baseline_rate, "baseline_cider": baseline_cider, "tolerance": tolerance,
        "selective_rate": reached,
        "reduction": None if reached is None else baseline_rate / reached,
        "lower_bound": None if reached is None else bool(math.isclose(reached, lowest)),
    }


def sweep_table(points: Sequence[SweepPoint]) -> str:
    """A Markdown table of sweep points (policy, setting, decodes/s, CIDEr, number of decodes)."""
    lines = ["| policy | setting | decodes/s | CIDEr | decodes |", "|---|---|---:|---:|---:|"]
    for p in points:
        lines.append(f"| {p.policy} | `{p.label}` | {p.decodes_per_second:.3f} | {p.cider:.3f} | {p.num_decodes} |")
    return "\n".join(lines) + "\n"


def plot_sweep(points: Sequence[SweepPoint], path: str | Path, *, title: str) -> Path:
    """CIDEr against decodes per second (log axis), one line per policy; written as PNG."""
    from jepa_core.extras import require

    require("matplotlib", extra="plots", purpose="the decoding sweep plot")
    from matplotlib.figure import Figure

    from eval.plots import save_figure

    figure = Figure(figsize=(6, 4))
    axis = figure.add_subplot()
    for policy in dict.fromkeys(p.policy for p in points):
        rates, scores = _curve([p for p in points if p.policy == policy])
        axis.plot(rates, scores, marker="o", label=policy)
    axis.set_xscale("log")
    axis.set_xlabel("decodes per second")
    axis.set_ylabel("CIDEr-D (nearest in time)")
    axis.set_title(title)
    axis.grid(True, which="both", alpha=0.3)
    axis.legend()
    return save_figure(figure, path)
