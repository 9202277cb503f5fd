"""Procedural "videos": objects appear, disappear and move, with atomic event annotations.

A stream is ``num_frames`` frames at ``fps``. Its timeline is cut into segments of
``min_segment_frames..max_segment_frames`` frames; with probability ``event_rate`` a segment holds one
event, otherwise nothing changes and it gets no annotation (like the gaps between EgoExo4D keysteps).
Events and the frames they cover (segment ``[a, b)``; annotation ``start = a / fps``, ``end = b / fps``):

* ``"a red circle appears"``: absent in frame ``a``, visible from the segment's middle frame to ``b - 1``;
* ``"the red circle disappears"``: visible in frame ``a``, gone from the middle frame on;
* ``"the red circle moves right"`` (left/up/down): moves at constant speed from frame ``a`` to ``b - 1``.

Objects visible together always differ in colour-shape pair, so "the red circle" is unambiguous. Two
consecutive annotations never have the same text. Everything depends only on ``(seed, split, index)``.
Extra column ``events`` gives each event's kind, object, direction and frame range.

Example:
    >>> from vljepa.data.streams import load_streams
    >>> streams = load_streams("train", num_streams=2, num_frames=16, use_cache=False)
    >>> streams[0]["annotations"][0]["text"]  # doctest: +SKIP
    'the blue square moves right'
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Any

import datasets
import numpy as np

from vljepa.data.cache import cached_dataset, config_fingerprint
from vljepa.data.images import encode_png
from vljepa.data.scene_render import (
    COLOR_RGB,
    SHAPES,
    SIZE_RADIUS,
    TEXTURES,
    PlacedObject,
    make_background,
    render_frame,
)
from vljepa.data.schema import with_extra_features

logger = logging.getLogger(__name__)

STREAM_SPLITS: dict[str, int] = {"train": 0, "validation": 1, "test": 2}
DIRECTIONS: dict[str, tuple[float, float]] = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}
EVENT_FEATURE = {
    "kind": datasets.Value("string"),
    "color": datasets.Value("string"),
    "shape": datasets.Value("string"),
    "direction": datasets.Value("string"),
    "start_frame": datasets.Value("int32"),
    "end_frame": datasets.Value("int32"),
}
STREAM_EXTRA_FEATURES = {"events": datasets.List(EVENT_FEATURE)}


@dataclass
class StreamConfig:
    """How procedural streams are simulated and drawn. Validated on construction."""

    seed: int = field(
        default=0, metadata={"help": "Master seed; stream i of a split depends on (seed, split, i)."}
    )
    num_streams: int = field(default=100, metadata={"help": "Streams in the requested split."})
    num_frames: int = field(default=32, metadata={"help": "Frames per stream."})
    fps: float = field(
        default=4.0, metadata={"help": "Frames per second (annotation times are frame / fps)."}
    )
    image_size: int = field(default=64, metadata={"help": "Side of the square frames in pixels."})
    max_objects: int = field(default=3, metadata={"help": "Most objects visible at once."})
    initial_objects: int = field(default=1, metadata={"help": "Objects visible in the first frame."})
    min_segment_frames: int = field(default=3, metadata={"help": "Shortest segment (frames)."})
    max_segment_frames: int = field(default=6, metadata={"help": "Longest segment (frames)."})
    event_rate: float = field(default=0.8, metadata={"help": "Chance that a segment holds an event."})
    move_speed: float = field(default=0.05, metadata={"help": "Distance per frame of a moving object (0-1)."})
    shapes: list[str] = field(
        default_factory=lambda: ["circle", "square", "triangle", "star"],
        metadata={"help": f"Subset of {SHAPES}."},
    )
    colors: list[str] = field(
        default_factory=lambda: ["red", "green", "blue", "yellow"],
        metadata={"help": f"Subset of {tuple(COLOR_RGB)}."},
    )
    size: str = field(default="large", metadata={"help": f"Object size, one of {tuple(SIZE_RADIUS)}."})
    texture: str = field(default="plain", metadata={"help": f"Background texture, one of {TEXTURES}."})
    color_jitter: float = field(default=0.0, metadata={"help": "Per-frame colour jitter of objects."})
    noise_std: float = field(default=4.0, metadata={"help": "Std of per-frame Gaussian pixel noise."})

    def __post_init__(self) -> None:
        if self.num_streams < 0 or self.num_frames < 2 or self.fps <= 0 or self.image_size < 32:
            raise ValueError("need num_streams >= 0, num_frames >= 2, fps > 0 and image_size >= 32")
        if not 1 <= self.initial_objects <= self.max_objects <= 4:
            raise ValueError(
                f"need 1 <= initial_objects <= max_objects <= 4, got {self.initial_objects}, "
                f"{self.max_objects}"
            )
        if not 2 <= self.min_segment_frames <= self.max_segment_frames <= self.num_frames:
            raise ValueError("need 2 <= min_segment_frames <= max_segment_frames <= num_frames")
        if not 0.0 <= self.event_rate <= 1.0 or not 0.0 < self.move_speed <= 0.2:
            raise ValueError("need 0 <= event_rate <= 1 and 0 < move_speed <= 0.2")
        for name, chosen, allowed in (
            ("shapes", self.shapes, SHAPES),
            ("colors", self.colors, tuple(COLOR_RGB)),
        ):
            if not chosen or any(value not in allowed for value in chosen) or len(set(chosen)) != len(chosen):
                raise ValueError(f"{name} must be distinct values from {allowed}; got {chosen}")
        if len(self.shapes) * len(self.colors) <= self.max_objects:
            raise ValueError("need more colour-shape pairs than max_objects so new objects can appear")
        if self.size not in SIZE_RADIUS or self.texture not in TEXTURES:
            raise ValueError(f"size must be in {tuple(SIZE_RADIUS)} and texture in {TEXTURES}")


def _check_split(split: str) -> str:
    if split not in STREAM_SPLITS:
        raise ValueError(f"streams have splits {list(STREAM_SPLITS)}; got split={split!r}")
    return split


class _Simulator:
    """Advances the scene segment by segment and records each frame's objects."""

    def __init__(self, config: StreamConfig, rng: np.random.Generator) -> None:
        self.config = config
        self.rng = rng
        self.radius = SIZE_RADIUS[config.size]
        self.visible: list[PlacedObject] = []
        self.frames: list[list[PlacedObject]] = []
        for _ in range(config.initial_objects):
            self._add_new(self.visible)

    def _free_position(self, others: list[PlacedObject]) -> tuple[float, float] | None:
        low, high = self.radius + 0.02, 1 - self.radius - 0.02
        for _ in range(100):
            x, y = self.rng.uniform(low, high, size=2)
            if all(self._apart(x, y, item) for item in others):
                return round(float(x), 4), round(float(y), 4)
        return None

    def _apart(self, x: float, y: float, item: PlacedObject) -> bool:
        return (x - item.x) ** 2 + (y - item.y) ** 2 > (2 * self.radius + 0.03) ** 2

    def _add_new(self, objects: list[PlacedObject]) -> PlacedObject | None:
        used = {item.pair for item in objects}
        free = [(c, s) for c in self.config.colors for s in self.config.shapes if f"{c} {s}" not in used]
        position = self._free_position(objects)
        if not free or position is None:
            return None
        color, shape = free[int(self.rng.integers(len(free)))]
        item = PlacedObject(shape=shape, color=color, size=self.config.size, x=position[0], y=position[1])
        objects.append(item)
        return item

    def _move_options(self, length: int) -> list[tuple[PlacedObject, str]]:
        distance = self.config.move_speed * (length - 1)
        low, high = self.radius + 0.01, 1 - self.radius - 0.01
        options = []
        for item in self.visible:
            for direction, (dx, dy) in DIRECTIONS.items():
                x, y = item.x + dx * distance, item.y + dy * distance
                others = [other for other in self.visible if other is not item]
                if low <= x <= high and low <= y <= high and all(self._apart(x, y, o) for o in others):
                    options.append((item, direction))
        return options

    def idle(self, length: int) -> None:
        self.frames.extend([list(self.visible) for _ in range(length)])

    def event(self, length: int, avoid_text: str | None) -> tuple[str, dict[str, Any]] | None:
        """Run one event over ``length`` frames; None (nothing run) when no event fits."""
        kinds = []
        if len(self.visible) < self.config.max_objects:
            kinds.append("appear")
        if len(self.visible) > 1:
            kinds.append("disappear")
        moves = self._move_options(length)
        if moves:
            kinds.append("move")
        for _ in range(10):
            if not kinds:
                return None
            kind = kinds[int(self.rng.integers(len(kinds)))]
            if kind == "move":
                item, direction = moves[int(self.rng.integers(len(moves)))]
                text = f"the {item.color} {item.shape} moves {direction}"
            elif kind == "disappear":
                item, direction = self.visible[int(self.rng.integers(len(self.visible)))], ""
                text = f"the {item.color} {item.shape} disappears"
            else:
                after = list(self.visible)
                item, direction = self._add_new(after), ""
                if item is None:
                    kinds.remove("appear")
                    continue
                article = "an" if item.color[0] in "aeiou" else "a"
                text = f"{article} {item.color} {item.shape} appears"
            if text != avoid_text:
                self._run(kind, item, direction, length)
                info = {"kind": kind, "color": item.color, "shape": item.shape, "direction": direction}
                return text, info
        return None

    def _run(self, kind: str, item: PlacedObject, direction: str, length: int) -> None:
        middle = length // 2
        if kind == "appear":
            self.frames.extend([list(self.visible) for _ in range(middle)])
            self.visible = self.visible + [item]
            self.frames.extend([list(self.visible) for _ in range(length - middle)])
        elif kind == "disappear":
            self.frames.extend([list(self.visible) for _ in range(middle)])
            self.visible = [other for other in self.visible if other is not item]
            self.frames.extend([list(self.visible) for _ in range(length - middle)])
        else:
            dx, dy = DIRECTIONS[direction]
            index = self.visible.index(item)
            for step in range(length):
                shift = self.config.move_speed * step
                moved = dataclasses.replace(
                    item, x=round(item.x + dx * shift, 4), y=round(item.y + dy * shift, 4)
                )
                self.visible = self.visible[:index] + [moved] + self.visible[index + 1 :]
                self.frames.append(list(self.visible))


def generate_stream(config: StreamConfig, split: str, index: int) -> dict[str, Any]:
    """Stream ``index`` of ``split``: PNG frames, annotations, events and its id."""
    rng = np.random.default_rng([config.seed, STREAM_SPLITS[_check_split(split)], index])
    simulator = _Simulator(config, rng)
    annotations: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    start = 0
    while start < config.num_frames:
        remaining = config.num_frames - start
        length = int(rng.integers(config.min_segment_frames, config.max_segment_frames + 1))
        length = remaining if remaining - length < config.min_segment_frames else length
        outcome = None
        if rng.random() < config.event_rate:
            outcome = simulator.event(length, annotations[-1]["text"] if annotations else None)
        if outcome is None:
            simulator.idle(length)
        else:
            text, info = outcome
            annotations.append(
                {"start": start / config.fps, "end": (start + length) / config.fps, "text": text}
            )
            events.append({**info, "start_frame": start, "end_frame": start + length})
        start += length
    background = make_background(rng, config.image_size, config.texture)
    frames = [
        encode_png(
            render_frame(
                objects, background, rng, color_jitter=config.color_jitter, noise_std=config.noise_std
            )
        )
        for objects in simulator.frames
    ]
    fingerprint = config_fingerprint(
        {k: v for k, v in dataclasses.asdict(config).items() if k != "num_streams"}
    )
    return {
        "frames": frames,
        "annotations": annotations,
        "events": events,
        "stream_id": f"streams-{fingerprint[:10]}-{split}-{index:06d}",
        "objects": simulator.frames,
    }


def load_streams(split: str = "train", *, use_cache: bool = True, **config: Any) -> datasets.Dataset:
    """Streams in the ``stream`` schema plus an ``events`` column; ``config``: StreamConfig fields
    (or ``config=StreamConfig(...)``). Frames are PNG bytes inside the rows."""
    _check_split(split)
    given = config.pop("config", None)
    if given is not None and (config or not isinstance(given, StreamConfig)):
        raise TypeError("pass either config=StreamConfig(...) or StreamConfig fields as keywords, not both")
    stream_config = given or StreamConfig(**config)
    features = with_extra_features("stream", STREAM_EXTRA_FEATURES)

    def build() -> datasets.Dataset:
        columns: dict[str, list[Any]] = {key: [] for key in features}
        for index in range(stream_config.num_streams):
            stream = generate_stream(stream_config, split, index)
            columns["frames"].append([{"bytes": frame, "path": None} for frame in stream["frames"]])
            columns["fps"].append(float(stream_config.fps))
            for key in ("annotations", "events", "stream_id"):
                columns[key].append(stream[key])
        return datasets.Dataset.from_dict(columns, features=features, split=datasets.Split(split))

    key = f"streams-{split}-{config_fingerprint(dataclasses.asdict(stream_config))}"
    return cached_dataset(key, build, split=split, use_cache=use_cache)
