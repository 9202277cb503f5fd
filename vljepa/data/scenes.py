"""Procedural multi-object scenes: deterministic by seed, any size, with held-out compositions.

Each image holds ``min_objects..max_objects`` shapes (circle, square, triangle, star, cross) in saturated
colours and two sizes, at random non-overlapping positions, over a pale background with a nuisance
texture (plain, noise, stripes, checker), colour jitter and pixel noise. Captions (see
:mod:`vljepa.data.scene_text`) state counts, positions, a spatial relation and sizes, so they tell
images apart; questions are of types colour, shape, count, position, relation and existence (yes/no),
each with its closed candidate set. ``caption_style="reworded"`` (registry name ``scenes-reworded``)
states the same facts in a second grammar (:mod:`vljepa.data.scene_captions_reworded`) for retrieval
with captions in other words; images and ids do not change.

Splits: ``train``, ``validation``, ``test`` never contain (or mention) a ``heldout_pairs`` colour-shape
pair; every ``heldout`` image contains at least one. Image ``i`` of a split depends only on
``(seed, split, i)`` and the image-shaping fields, so the first images are the same at any
``num_images``, and the same config always gives identical PNG bytes.

Example:
    >>> from vljepa.data.scenes import load_scenes, load_scenes_vqa
    >>> captions = load_scenes("train", num_images=4, use_cache=False)
    >>> vqa = load_scenes_vqa("heldout", num_images=4, use_cache=False)
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import datasets
import numpy as np

from vljepa.data.cache import SCHEMA_VERSION, cached_dataset, config_fingerprint, dataset_cache_dir
from vljepa.data.images import encode_png
from vljepa.data.scene_captions_reworded import reworded_scene_captions
from vljepa.data.scene_render import (
    COLOR_RGB,
    SHAPES,
    SIZE_RADIUS,
    TEXTURES,
    PlacedObject,
    make_background,
    render_frame,
)
from vljepa.data.scene_text import scene_captions, scene_questions
from vljepa.data.schema import with_extra_features

logger = logging.getLogger(__name__)

SCENE_SPLITS: dict[str, int] = {"train": 0, "validation": 1, "test": 2, "heldout": 3}
OBJECT_FEATURE = {
    "shape": datasets.Value("string"),
    "color": datasets.Value("string"),
    "size": datasets.Value("string"),
    "x": datasets.Value("float64"),
    "y": datasets.Value("float64"),
}
SCENE_EXTRA_FEATURES = {"objects": datasets.List(OBJECT_FEATURE)}
# Fields that do not change pixels: left out of the image fingerprint so ids/files stay stable.
_NON_IMAGE_FIELDS = ("num_images", "captions_per_image", "questions_per_image", "caption_style")


@dataclass
class SceneConfig:
    """How procedural scenes are drawn and described. Validated on construction."""

    seed: int = field(
        default=0, metadata={"help": "Master seed; image i of a split depends on (seed, split, i)."}
    )
    num_images: int = field(default=1000, metadata={"help": "Images in the requested split."})
    image_size: int = field(default=96, metadata={"help": "Side of the square image in pixels."})
    min_objects: int = field(default=1, metadata={"help": "Fewest objects in an image."})
    max_objects: int = field(
        default=4, metadata={"help": "Most objects in an image (also the largest count)."}
    )
    shapes: list[str] = field(default_factory=lambda: list(SHAPES), metadata={"help": f"Subset of {SHAPES}."})
    colors: list[str] = field(
        default_factory=lambda: ["red", "green", "blue", "yellow", "purple", "orange"],
        metadata={"help": f"Subset of {tuple(COLOR_RGB)}."},
    )
    sizes: list[str] = field(
        default_factory=lambda: list(SIZE_RADIUS), metadata={"help": "Subset of small, large."}
    )
    heldout_pairs: list[str] = field(
        default_factory=lambda: ["red square", "green circle", "blue triangle"],
        metadata={"help": "'colour shape' pairs that appear only in the 'heldout' split."},
    )
    repeat_probability: float = field(
        default=0.3,
        metadata={"help": "Chance an object copies the previous one's colour and shape (counts > 1)."},
    )
    textures: list[str] = field(
        default_factory=lambda: list(TEXTURES), metadata={"help": f"Subset of {TEXTURES}."}
    )
    color_jitter: float = field(
        default=12.0, metadata={"help": "Max per-channel colour jitter of an object."}
    )
    noise_std: float = field(default=6.0, metadata={"help": "Std of Gaussian pixel noise (0-255 scale)."})
    captions_per_image: int = field(default=4, metadata={"help": "Captions per image (at most 5)."})
    questions_per_image: int = field(default=6, metadata={"help": "Questions per image in scenes-vqa."})
    caption_style: Literal["standard", "reworded"] = field(
        default="standard",
        metadata={
            "help": "'standard': the training captions; 'reworded': the same facts in a grammar training never "
            "uses (vljepa.data.scene_captions_reworded), for retrieval with captions in other words."
        },
    )

    def __post_init__(self) -> None:
        if self.num_images < 0 or self.image_size < 32:
            raise ValueError(
                f"need num_images >= 0 and image_size >= 32, got {self.num_images}, {self.image_size}"
            )
        if not 1 <= self.min_objects <= self.max_objects <= 8:
            raise ValueError(
                f"need 1 <= min_objects <= max_objects <= 8, got {self.min_objects}, {self.max_objects}"
            )
        for name, chosen, allowed in (
            ("shapes", self.shapes, SHAPES),
            ("colors", self.colors, tuple(COLOR_RGB)),
            ("sizes", self.sizes, tuple(SIZE_RADIUS)),
            ("textures", self.textures, TEXTURES),
        ):
            unknown = [value for value in chosen if value not in allowed]
            if not chosen or unknown or len(set(chosen)) != len(chosen):
                raise ValueError(f"{name} must be distinct values from {allowed}; got {chosen}")
        all_pairs = {f"{color} {shape}" for color in self.colors for shape in self.shapes}
        unknown_pairs = [pair for pair in self.heldout_pairs if pair not in all_pairs]
        if unknown_pairs:
            raise ValueError(
                f"heldout_pairs {unknown_pairs} are not 'colour shape' pairs of the chosen colours/shapes"
            )
        for color in self.colors:
            if all(f"{color} {shape}" in self.heldout_pairs for shape in self.shapes):
                raise ValueError(f"every shape of colour {color!r} is held out; training would never see it")
        for shape in self.shapes:
            if all(f"{color} {shape}" in self.heldout_pairs for color in self.colors):
                raise ValueError(f"every colour of shape {shape!r} is held out; training would never see it")
        if not 0.0 <= self.repeat_probability < 1.0:
            raise ValueError(f"repeat_probability must be in [0, 1), got {self.repeat_probability}")
        if self.color_jitter < 0 or self.noise_std < 0:
            raise ValueError("color_jitter and noise_std must be >= 0")
        if self.caption_style not in ("standard", "reworded"):
            raise ValueError(f"caption_style must be 'standard' or 'reworded', got {self.caption_style!r}")
        if not 1 <= self.captions_per_image <= 5 or self.questions_per_image < 1:
            raise ValueError("need 1 <= captions_per_image <= 5 and questions_per_image >= 1")
        # The largest objects must fit side by side with room to spare for rejection sampling.
        if self.max_objects * (2 * max(SIZE_RADIUS[s] for s in self.sizes)) ** 2 > 0.6:
            raise ValueError(f"max_objects={self.max_objects} objects of these sizes do not fit in one image")

    def image_fingerprint(self) -> str:
        """Hash of the fields that decide pixels and objects (not counts of rows or texts)."""
        fields = {k: v for k, v in dataclasses.asdict(self).items() if k not in _NON_IMAGE_FIELDS}
        return config_fingerprint(fields, length=10)


def _check_split(split: str) -> str:
    if split not in SCENE_SPLITS:
        raise ValueError(f"scenes have splits {list(SCENE_SPLITS)}; got split={split!r}")
    return split


def _place(
    rng: np.random.Generator, radius: float, placed: list[tuple[float, float, float]]
) -> tuple[float, float] | None:
    for _ in range(200):
        x, y = rng.uniform(radius + 0.02, 1 - radius - 0.02, size=2)
        if all((x - ox) ** 2 + (y - oy) ** 2 > (radius + orad + 0.02) ** 2 for ox, oy, orad in placed):
            return float(x), float(y)
    return None


def sample_objects(config: SceneConfig, split: str, rng: np.random.Generator) -> list[PlacedObject]:
    """The objects of one image of ``split`` (held-out pairs only, and always, in ``heldout``)."""
    heldout = set(config.heldout_pairs)
    pairs = [(c, s) for c in config.colors for s in config.shapes]
    allowed = pairs if split == "heldout" else [p for p in pairs if f"{p[0]} {p[1]}" not in heldout]
    forced = [p for p in pairs if f"{p[0]} {p[1]}" in heldout] if split == "heldout" else []
    count = int(rng.integers(config.min_objects, config.max_objects + 1))
    objects: list[PlacedObject] = []
    placed: list[tuple[float, float, float]] = []
    for index in range(count):
        if index == 0 and forced:
            color, shape = forced[int(rng.integers(len(forced)))]
        elif objects and rng.random() < config.repeat_probability:
            color, shape = objects[-1].color, objects[-1].shape
        else:
            color, shape = allowed[int(rng.integers(len(allowed)))]
        size = config.sizes[int(rng.integers(len(config.sizes)))]
        radius = SIZE_RADIUS[size]
        position = _place(rng, radius, placed)
        if position is None:
            continue  # no room left: the image keeps fewer objects
        placed.append((*position, radius))
        objects.append(
            PlacedObject(
                shape=shape, color=color, size=size, x=round(position[0], 4), y=round(position[1], 4)
            )
        )
    return objects


def generate_scene(config: SceneConfig, split: str, index: int) -> dict[str, Any]:
    """Image ``index`` of ``split``: ``{"png", "objects", "captions", "questions", "image_id"}``."""
    _check_split(split)
    rng = np.random.default_rng([config.seed, SCENE_SPLITS[split], index])
    objects = sample_objects(config, split, rng)
    texture = config.textures[int(rng.integers(len(config.textures)))]
    background = make_background(rng, config.image_size, texture)
    image = render_frame(
        objects, background, rng, color_jitter=config.color_jitter, noise_std=config.noise_std
    )
    text_rng = np.random.default_rng([config.seed, SCENE_SPLITS[split], index, 1])
    absent = [f"{c} {s}" for c in config.colors for s in config.shapes]
    captioner = reworded_scene_captions if config.caption_style == "reworded" else scene_captions
    if split != "heldout":
        absent = [pair for pair in absent if pair not in config.heldout_pairs]
    return {
        "png": encode_png(image),
        "objects": objects,
        "captions": captioner(objects, text_rng, config.captions_per_image),
        "questions": scene_questions(
            objects,
            text_rng,
            colors=config.colors,
            shapes=config.shapes,
            max_objects=config.max_objects,
            absent_pairs=absent,
            limit=config.questions_per_image,
        ),
        "image_id": f"scenes-{config.image_fingerprint()}-{split}-{index:06d}",
    }


def _image_value(scene: dict[str, Any], image_dir: Path | None) -> dict[str, Any]:
    if image_dir is None:
        return {"bytes": scene["png"], "path": None}
    path = image_dir / f"{scene['image_id']}.png"
    if not path.is_file():
        path.write_bytes(scene["png"])
    return {"bytes": None, "path": str(path)}


def _rows(
    config: SceneConfig, split: str, task: Literal["captioning", "vqa"], image_dir: Path | None
) -> Iterator[dict[str, Any]]:
    for index in range(config.num_images):
        scene = generate_scene(config, split, index)
        objects = [item.as_dict() for item in scene["objects"]]
        image = _image_value(scene, image_dir)
        if task == "captioning":
            yield {
                "image": image,
                "captions": scene["captions"],
                "image_id": scene["image_id"],
                "objects": objects,
            }
            continue
        for number, question in enumerate(scene["questions"]):
            yield {
                "image": image,
                "question": question["question"],
                "answers": [question["answer"]],
                "question_type": question["question_type"],
                "candidates": question["candidates"],
                "image_id": scene["image_id"],
                "question_id": f"{scene['image_id']}-q{number}",
                "objects": objects,
            }


def _load(
    task: Literal["captioning", "vqa"],
    split: str,
    use_cache: bool,
    streaming: bool,
    overrides: dict[str, Any],
) -> datasets.Dataset | datasets.IterableDataset:
    _check_split(split)
    config = overrides.pop("config", None)
    if config is None:
        config = SceneConfig(**overrides)
    elif overrides or not isinstance(config, SceneConfig):
        raise TypeError("pass either config=SceneConfig(...) or SceneConfig fields as keywords, not both")
    features = with_extra_features(task, SCENE_EXTRA_FEATURES)
    if streaming:
        return datasets.IterableDataset.from_generator(
            _rows,
            features=features,
            gen_kwargs={"config": config, "split": split, "task": task, "image_dir": None},
        )

    def build() -> datasets.Dataset:
        image_dir = None
        if use_cache:  # images as files shared by the caption and VQA views, rows hold paths
            image_dir = (
                dataset_cache_dir() / f"scenes-images-v{SCHEMA_VERSION}" / config.image_fingerprint() / split
            )
            image_dir.mkdir(parents=True, exist_ok=True)
        rows = list(_rows(config, split, task, image_dir))
        columns = {key: [row[key] for row in rows] for key in features}
        return datasets.Dataset.from_dict(columns, features=features, split=datasets.Split(split))

    key = (
        f"scenes-{task}-{split}-{config_fingerprint(json.dumps(dataclasses.asdict(config), sort_keys=True))}"
    )
    return cached_dataset(key, build, split=split, use_cache=use_cache, still_valid=_image_files_exist)


def _image_files_exist(dataset: datasets.Dataset) -> bool:
    """A cached table is stale when the PNG files it points to were deleted."""
    if len(dataset) == 0:
        return True
    images = dataset.cast_column("image", datasets.Image(decode=False))
    return all(Path(images[index]["image"]["path"]).is_file() for index in (0, len(dataset) - 1))


def load_scenes(
    split: str = "train", *, use_cache: bool = True, streaming: bool = False, **config: Any
) -> datasets.Dataset | datasets.IterableDataset:
    """Scenes in the ``captioning`` schema plus an ``objects`` column; ``config``: SceneConfig fields.

    ``use_cache``: write PNGs and the Arrow table under ``$JEPA_CACHE_DIR/datasets`` (rows hold paths);
    otherwise PNG bytes live in the rows. ``streaming``: an ``IterableDataset`` drawing on the fly.
    """
    return _load("captioning", split, use_cache, streaming, dict(config))


def load_scenes_reworded(
    split: str = "test", *, use_cache: bool = True, streaming: bool = False, **config: Any
) -> datasets.Dataset | datasets.IterableDataset:
    """The same scenes as :func:`load_scenes` (same images and ids for the same config), captioned in other
    words (``caption_style="reworded"``): retrieval with captions training never phrased this way.

    Evaluation only: ``split="train"`` is refused.
    """
    if split == "train":
        raise ValueError(
            "scenes-reworded is for evaluating retrieval in other words; its captions must never be trained on. "
            "Use split='test' (or 'validation'/'heldout'), and 'scenes' to train."
        )
    if config.get("caption_style", "reworded") != "reworded":
        raise ValueError("scenes-reworded always uses caption_style='reworded'; use 'scenes' for the others")
    if isinstance(config.get("config"), SceneConfig):
        config = {**config, "config": dataclasses.replace(config["config"], caption_style="reworded")}
    else:
        config = {**config, "caption_style": "reworded"}
    return _load("captioning", split, use_cache, streaming, config)


def load_scenes_vqa(
    split: str = "train", *, use_cache: bool = True, streaming: bool = False, **config: Any
) -> datasets.Dataset | datasets.IterableDataset:
    """Scene questions in the ``vqa`` schema (one row per question) plus an ``objects`` column."""
    return _load("vqa", split, use_cache, streaming, dict(config))
