"""Selective decoding: choose *when* to turn a stream of embeddings into text.

VL-JEPA yields one embedding per frame (or per window of frames) at almost no cost; the Y-decoder is the
expensive part. Each policy below takes embeddings ``[T, D]`` with timestamps ``[T]`` (seconds, strictly
increasing) and returns :class:`DecodeEvent` s, the moments at which one decode happens and the embedding
to decode there:

* :func:`uniform_events` — the baseline: decode at a fixed rate.
* :func:`ward_events` — offline, as in the paper: Ward agglomerative clustering with a temporal chain
  connectivity splits the stream into contiguous segments; decode once per segment (its mean embedding or
  its medoid), timestamped at the segment's centre.
* :func:`drift_events` — online: decode when the (causally smoothed) embedding has drifted from the last
  decoded one by more than a cosine-distance threshold, or when ``max_gap_s`` has passed.

:func:`caption_events` then decodes the events into :class:`TimedCaption` s.

Example::

    >>> events = ward_events(embeddings, timestamps, num_segments=12)      # doctest: +SKIP
    >>> captions = caption_events(decoder.decode, events)
    >>> captions[0].time, captions[0].text
    (1.25, 'a red circle appears')
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

Representative = Literal["mean", "medoid"]
UniformPooling = Literal["frame", "window_mean"]


@dataclass
class DecodeEvent:
    """One decode: at ``time`` (seconds) decode ``embedding`` ``[D]``, which summarises ``[start, end]``."""

    time: float = field(metadata={"help": "Timestamp the decoded text is attached to (seconds)."})
    embedding: torch.Tensor = field(metadata={"help": "[D] embedding to decode."})
    start: float = field(metadata={"help": "First timestamp the embedding summarises."})
    end: float = field(metadata={"help": "Last timestamp the embedding summarises."})


@dataclass
class TimedCaption:
    """Text decoded at ``time`` (seconds) from an embedding summarising ``[start, end]``."""

    time: float
    text: str
    start: float
    end: float


def _check_stream(embeddings: torch.Tensor, timestamps: Sequence[float] | torch.Tensor) -> np.ndarray:
    times = np.asarray(torch.as_tensor(timestamps, dtype=torch.float64).cpu())
    if embeddings.ndim != 2:
        raise ValueError(f"embeddings must have shape [T, D], got {list(embeddings.shape)}")
    if times.ndim != 1 or times.shape[0] != embeddings.shape[0]:
        raise ValueError(f"timestamps must have shape [T] = [{embeddings.shape[0]}], got {list(times.shape)}")
    if times.shape[0] == 0:
        raise ValueError("the stream is empty: no embeddings to decode")
    if np.any(np.diff(times) <= 0):
        raise ValueError("timestamps must be strictly increasing")
    return times


def uniform_events(
    embeddings: torch.Tensor,
    timestamps: Sequence[float] | torch.Tensor,
    *,
    rate_hz: float,
    pooling: UniformPooling = "frame",
) -> list[DecodeEvent]:
    """Decode at ``t0, t0 + 1/rate, ...`` (up to the last timestamp).

    ``pooling="frame"``: the embedding of the latest frame at or before each decode time (causal, online).
    ``"window_mean"``: the mean embedding over the frames within half a period of the decode time (offline).
    """
    times = _check_stream(embeddings, timestamps)
    if rate_hz <= 0:
        raise ValueError(f"rate_hz must be > 0, got {rate_hz}")
    if pooling not in ("frame", "window_mean"):
        raise ValueError(f"pooling must be 'frame' or 'window_mean', got {pooling!r}")
    period = 1.0 / rate_hz
    # Round before flooring so that an exact multiple of the period is not lost to float error.
    count = int(np.floor(round((times[-1] - times[0]) / period, 9))) + 1
    events = []
    for k in range(count):
        when = times[0] + k * period
        if pooling == "frame":
            index = int(np.searchsorted(times, when + 1e-9, side="right")) - 1
            events.append(DecodeEvent(time=float(when), embedding=embeddings[index], start=float(times[index]),
                                      end=float(times[index])))
        else:
            inside = np.flatnonzero(np.abs(times - when) <= period / 2 + 1e-9)
            if inside.size == 0:  # frames sparser than the decode rate: take the nearest one
                inside = np.array([int(np.argmin(np.abs(times - when)))])
            events.append(DecodeEvent(time=float(when), embedding=embeddings[inside].mean(dim=0),
                                      start=float(times[inside[0]]), end=float(times[inside[-1]])))
    return events


def ward_segments(embeddings: torch.Tensor, *, num_segments: int) -> list[tuple[int, int]]:
    """Split ``[T, D]`` into ``num_segments`` contiguous segments ``[(start, end), ...]`` (end exclusive).

    Ward linkage on L2-normalised embeddings, restricted by a chain connectivity (frame ``t`` is connected
    to ``t - 1`` and ``t + 1``) so that only temporally adjacent segments merge.
    """
    from jepa_core.extras import require

    require("scipy", extra="selective", purpose="Ward segmentation (vljepa.decoding.selective)")
    require("sklearn", extra="selective", purpose="Ward segmentation (vljepa.decoding.selective)")
    from scipy.sparse import diags
    from sklearn.cluster import AgglomerativeClustering

    length = embeddings.shape[0]
    if num_segments < 1:
        raise ValueError(f"num_segments must be >= 1, got {num_segments}")
    if num_segments >= length:
        return [(t, t + 1) for t in range(length)]
    if num_segments == 1:
        return [(0, length)]
    features = F.normalize(embeddings.detach().float().cpu(), dim=-1).numpy()
    chain = diags([np.ones(length - 1), np.ones(length - 1)], offsets=[-1, 1], shape=(length, length))
    labels = AgglomerativeClustering(
        n_clusters=num_segments, linkage="ward", connectivity=chain.tocsr()
    ).fit_predict(features)
    boundaries = [0] + [t for t in range(1, length) if labels[t] != labels[t - 1]] + [length]
    segments = list(itertools.pairwise(boundaries))
    if len(segments) != num_segments:  # would mean a cluster is not contiguous
        raise RuntimeError(f"Ward clustering produced {len(segments)} runs for {num_segments} clusters")
    return segments


def _medoid(rows: torch.Tensor) -> torch.Tensor:
    unit = F.normalize(rows.float(), dim=-1)
    return rows[int((unit @ unit.T).sum(dim=1).argmax())]


def ward_events(
    embeddings: torch.Tensor,
    timestamps: Sequence[float] | torch.Tensor,
    *,
    num_segments: int,
    representative: Representative = "mean",
) -> list[DecodeEvent]:
    """One event per Ward segment, at the segment's mean timestamp, decoding its mean embedding or medoid
    (the member with the largest summed cosine similarity to the others)."""
    times = _check_stream(embeddings, timestamps)
    if representative not in ("mean", "medoid"):
        raise ValueError(f"representative must be 'mean' or 'medoid', got {representative!r}")
    events = []
    for start, end in ward_segments(embeddings, num_segments=num_segments):
        rows = embeddings[start:end]
        vector = rows.mean(dim=0) if representative == "mean" else _medoid(rows)
        events.append(DecodeEvent(time=float(times[start:end].mean()), embedding=vector,
                                  start=float(times[start]), end=float(times[end - 1])))
    return events


def drift_events(
    embeddings: torch.Tensor,
    timestamps: Sequence[float] | torch.Tensor,
    *,
    threshold: float,
    max_gap_s: float | None = None,
    smoothing_frames: int = 1,
) -> list[DecodeEvent]:
    """Online policy: decode the first frame, then whenever the cosine distance between the current
    embedding and the last decoded one exceeds ``threshold``, or ``max_gap_s`` seconds have passed.

    The current embedding is the mean of the last ``smoothing_frames`` frames (causal), which keeps
    frame-level noise from triggering decodes; it is also what gets decoded.
    """
    times = _check_stream(embeddings, timestamps)
    if not 0.0 <= threshold <= 2.0:
        raise ValueError(f"threshold is a cosine distance in [0, 2], got {threshold}")
    if max_gap_s is not None and max_gap_s <= 0:
        raise ValueError(f"max_gap_s must be > 0 or None, got {max_gap_s}")
    if smoothing_frames < 1:
        raise ValueError(f"smoothing_frames must be >= 1, got {smoothing_frames}")
    values = embeddings.detach().float()
    cumulative = torch.cat([torch.zeros_like(values[:1]), values.cumsum(dim=0)])
    events: list[DecodeEvent] = []
    last: torch.Tensor | None = None
    for t in range(values.shape[0]):
        first = max(0, t - smoothing_frames + 1)
        current = (cumulative[t + 1] - cumulative[first]) / (t + 1 - first)
        decode = last is None
        if not decode:
            distance = 1.0 - float(F.cosine_similarity(current, last, dim=0))
            waited = times[t] - events[-1].time
            decode = distance > threshold or (max_gap_s is not None and waited >= max_gap_s - 1e-9)
        if decode:
            events.append(DecodeEvent(time=float(times[t]), embedding=current.to(embeddings.dtype),
                                      start=float(times[first]), end=float(times[t])))
            last = current
    return events


def caption_events(
    decode: Callable[[torch.Tensor], list[str]], events: Sequence[DecodeEvent]
) -> list[TimedCaption]:
    """Decode all events in one batch with ``decode`` (e.g. ``YDecoder.decode``) into timed captions."""
    if not events:
        return []
    texts = decode(torch.stack([event.embedding for event in events]))
    if len(texts) != len(events):
        raise ValueError(f"the decoder returned {len(texts)} texts for {len(events)} embeddings")
    return [TimedCaption(time=e.time, text=text, start=e.start, end=e.end) for e, text in zip(events, texts)]


def decodes_per_second(events: Sequence[DecodeEvent | TimedCaption], duration_s: float) -> float:
    """Average decode rate over a stream lasting ``duration_s`` seconds."""
    if duration_s <= 0:
        raise ValueError(f"duration_s must be > 0, got {duration_s}")
    return len(events) / duration_s
