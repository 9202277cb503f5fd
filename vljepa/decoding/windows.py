"""Per-window inputs for stream embeddings: short windows of frames, tiled into one image (a montage).

A single frame cannot show an event ("the red circle moves left" needs at least two frames), so streams
are embedded per causal window of ``w`` frames ending at each frame. Tiling the window into a grid image
(time runs left to right, then top to bottom) lets any image model, and the image trainer with its
feature cache, see the motion. :func:`write_window_caption_folder` turns annotated streams into an image
folder (``metadata.jsonl``) that ``load_vl_dataset("folder", root=...)`` reads as a captioning dataset,
to train a query-free VL-JEPA on stream windows; each window is captioned with the event it shows.

Example::

    >>> images = stream_window_images(frames, window_frames=4)      # doctest: +SKIP
    >>> embeddings = model.embed_images(images)                      # [T, D]
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from PIL import Image


def montage(frames: Sequence[Image.Image]) -> Image.Image:
    """Tile equally sized frames into a near-square grid (``ceil(sqrt(n))`` columns), in time order."""
    if not frames:
        raise ValueError("montage needs at least one frame")
    width, height = frames[0].size
    if any(frame.size != (width, height) for frame in frames):
        raise ValueError(f"montage frames must share one size, got {sorted({f.size for f in frames})}")
    columns = math.ceil(math.sqrt(len(frames)))
    rows = math.ceil(len(frames) / columns)
    canvas = Image.new("RGB", (columns * width, rows * height))
    for index, frame in enumerate(frames):
        canvas.paste(frame.convert("RGB"), ((index % columns) * width, (index // columns) * height))
    return canvas


def stream_window_images(frames: Sequence[Image.Image], *, window_frames: int) -> list[Image.Image]:
    """One image per frame: the frame itself (``w = 1``) or the montage of the ``w`` frames ending there
    (the first frame repeated before the stream starts, so all montages have ``w`` tiles)."""
    if window_frames < 1:
        raise ValueError(f"window_frames must be >= 1, got {window_frames}")
    if window_frames == 1:
        return list(frames)
    return [
        montage([frames[max(0, t - k)] for k in range(window_frames - 1, -1, -1)]) for t in range(len(frames))
    ]


def window_event_captions(
    events: Sequence[Mapping[str, Any]],
    annotations: Sequence[Mapping[str, Any]],
    *,
    num_frames: int,
    window_frames: int,
    idle_text: str | None,
) -> list[str | None]:
    """Per causal window (ending at each frame), the text of the event the window *shows*, else ``idle_text``.

    ``events`` and ``annotations`` are the parallel columns of ``vljepa.data.streams``. A move is shown by a
    window holding two or more of its frames; an appearance or disappearance (the object changes at the
    segment's middle frame) by a window holding the frames on both sides of the change. Windows that show no
    change get ``idle_text`` even inside an annotation (the first half of "a red circle appears" looks
    like any still scene), so training targets are what the window can tell.
    """
    if len(events) != len(annotations):
        raise ValueError(f"{len(events)} events but {len(annotations)} annotations: expected parallel columns")
    captions: list[str | None] = [idle_text] * num_frames
    for event, annotation in zip(events, annotations):
        start, end = int(event["start_frame"]), int(event["end_frame"])
        for t in range(num_frames):
            first = t - window_frames + 1
            if event["kind"] == "move":
                shown = min(t, end - 1) - max(first, start) + 1 >= 2
            elif event["kind"] in ("appear", "disappear"):
                change = start + (end - start) // 2
                shown = first < change <= t
            else:
                raise ValueError(f"unknown stream event kind {event['kind']!r}")
            if shown:
                captions[t] = str(annotation["text"])
    return captions


def write_window_caption_folder(
    streams: Iterable[Mapping[str, Any]],
    root: str | Path,
    *,
    window_frames: int,
    idle_text: str | None,
    event_stride: int = 1,
    idle_stride: int = 4,
) -> Path:
    """Write montage PNGs and ``metadata.jsonl`` (``file_name``, ``caption``) for windows of streams from
    ``vljepa.data.streams`` (rows with ``events``), captioned by :func:`window_event_captions`.

    Every ``event_stride``-th window that shows an event is kept, and every ``idle_stride``-th window that
    shows none (most windows are idle; ``idle_text=None`` drops them all). Returns ``root``, ready for
    ``load_vl_dataset("folder", root=root)``.
    """
    if event_stride < 1 or idle_stride < 1:
        raise ValueError(f"strides must be >= 1, got event_stride={event_stride}, idle_stride={idle_stride}")
    root = Path(root)
    (root / "images").mkdir(parents=True, exist_ok=True)
    records = []
    for stream in streams:
        frames = stream["frames"]
        captions = window_event_captions(
            stream["events"], stream["annotations"], num_frames=len(frames), window_frames=window_frames,
            idle_text=idle_text,
        )
        images = stream_window_images(frames, window_frames=window_frames)
        for t in range(len(frames)):
            idle = captions[t] is None or captions[t] == idle_text
            if captions[t] is None or t % (idle_stride if idle else event_stride):
                continue
            name = f"images/{stream['stream_id']}-{t:05d}.png"
            images[t].save(root / name)
            records.append({"file_name": name, "caption": captions[t]})
    if not records:
        raise ValueError("no window was captioned: the streams show no event and idle_text is None")
    with (root / "metadata.jsonl").open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record) + "\n")
    return root
