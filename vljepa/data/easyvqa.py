"""easy-VQA (the bundled ``easy_vqa`` PyPI package) as ``vqa`` and ``captioning`` datasets.

easy-VQA images are 64x64 PNGs, each holding one shape (circle, rectangle, triangle) in one of eight
colours. The package ships 38,575 train / 9,673 test questions over 4,000 / 1,000 images and 13 answers.

VQA rows (:func:`load_easyvqa`): one per question; ``answers`` is the single upstream answer,
``candidates`` the 13 upstream answers, ``question_type`` comes from the answer:

* ``"shape"`` when the answer is a shape name ("what shape is in the image?"),
* ``"color"`` when the answer is a colour name ("what color is the triangle?"),
* ``"yes/no"`` when the answer is ``yes`` or ``no`` ("is there a red shape?").

Caption rows (:func:`load_easyvqa_captions`): one per image, captions built from that image's own QA
facts only (no pixels are read). A fact is the shape or colour of the image's one object:

* a ``shape``/``color`` question's answer states it directly;
* a yes/no question names a shape and/or a colour; it is negated when it contains "not" or "no", and
  the named attribute is present when ``(answer == "yes") != negated``, absent otherwise;
* when all shapes (or colours) but one are known absent, the remaining one is the fact.

Two facts that disagree raise an error naming the image. About 80% of images get both facts ("a blue
circle"); the rest get a caption with the one fact known ("a blue shape", "a circle"); images with no
fact are left out of the caption dataset (the count is logged). ``shape`` and ``color`` columns hold the
facts ("" when unknown).

Ids: ``image_id`` is ``"<split>-<upstream id>"`` (train and test reuse upstream ids 0..N, so the split
prefix keeps feature caches from mixing them), ``question_id`` is ``"<split>-q<index>"``.

The built datasets are cached as Arrow under ``$JEPA_CACHE_DIR/datasets`` keyed by the package version
and location; images stay as paths into the installed package.

Example:
    >>> from vljepa.data.easyvqa import load_easyvqa
    >>> test = load_easyvqa("test")
    >>> len(test), len(test[0]["candidates"])
    (9673, 13)
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import datasets

from vljepa.data.cache import cached_dataset, config_fingerprint
from vljepa.data.schema import VQA_FEATURES, with_extra_features

logger = logging.getLogger(__name__)

EASYVQA_SPLITS = ("train", "test")
EASYVQA_SHAPES = ("circle", "rectangle", "triangle")
EASYVQA_COLORS = ("red", "green", "blue", "gray", "teal", "black", "yellow", "brown")
YES_NO = ("yes", "no")

# Paraphrase templates for an image whose shape and colour are both known; fixed order, so deterministic.
FULL_CAPTION_TEMPLATES = (
    "a {color} {shape}",
    "a {color} {shape} on a plain background",
    "there is a {color} {shape} in the image",
    "the image shows one {shape}, and it is {color}",
)
SHAPE_ONLY_TEMPLATES = ("a {shape}", "there is a {shape} in the image")
COLOR_ONLY_TEMPLATES = ("a {color} shape", "there is a {color} shape in the image")

CAPTION_EXTRA_FEATURES = {"shape": datasets.Value("string"), "color": datasets.Value("string")}


def _import_easy_vqa():
    try:
        import easy_vqa
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError(
            "easy-VQA needs the bundled data package: "
            "pip install easy-vqa (or pip install 'jepa-hf[bundled]')"
        ) from error
    return easy_vqa


def _check_split(split: str) -> str:
    if split not in EASYVQA_SPLITS:
        raise ValueError(f"easy-VQA has splits {list(EASYVQA_SPLITS)}; got split={split!r}")
    return split


def _package_key() -> str:
    easy_vqa = _import_easy_vqa()
    version = metadata.version("easy-vqa")
    location = str(Path(easy_vqa.__file__).resolve().parent)
    return f"{version}-{config_fingerprint(location, length=10)}"


def question_type_of(answer: str) -> str:
    """``"shape"``, ``"color"`` or ``"yes/no"``, from the upstream answer (see the module docstring)."""
    if answer in EASYVQA_SHAPES:
        return "shape"
    if answer in EASYVQA_COLORS:
        return "color"
    if answer in YES_NO:
        return "yes/no"
    raise ValueError(f"easy-VQA answer {answer!r} is not a shape, a colour, yes or no")


def _raw_split(split: str) -> tuple[list[str], list[str], list[int], dict[int, str]]:
    easy_vqa = _import_easy_vqa()
    if split == "train":
        texts, answers, image_ids = easy_vqa.get_train_questions()
        paths = easy_vqa.get_train_image_paths()
    else:
        texts, answers, image_ids = easy_vqa.get_test_questions()
        paths = easy_vqa.get_test_image_paths()
    missing = sorted(set(image_ids) - set(paths))
    if missing:
        raise FileNotFoundError(
            f"easy-VQA {split}: questions refer to images {missing[:5]} that the package lacks; "
            "reinstall easy-vqa"
        )
    return list(texts), list(answers), list(image_ids), dict(paths)


def _build_vqa(split: str) -> datasets.Dataset:
    texts, answers, image_ids, paths = _raw_split(split)
    candidates = list(_import_easy_vqa().get_answers())
    return datasets.Dataset.from_dict(
        {
            "image": [paths[image_id] for image_id in image_ids],
            "question": texts,
            "answers": [[answer] for answer in answers],
            "question_type": [question_type_of(answer) for answer in answers],
            "candidates": [candidates] * len(texts),
            "image_id": [f"{split}-{image_id}" for image_id in image_ids],
            "question_id": [f"{split}-q{index}" for index in range(len(texts))],
        },
        features=VQA_FEATURES,
        split=datasets.Split(split),
    )


def load_easyvqa(split: str = "train", *, use_cache: bool = True) -> datasets.Dataset:
    """easy-VQA questions in the ``vqa`` schema (train: 38,575 rows, test: 9,673 rows)."""
    _check_split(split)
    return cached_dataset(
        f"easyvqa-vqa-{split}-{_package_key()}", lambda: _build_vqa(split), split=split, use_cache=use_cache
    )


@dataclass
class ImageFacts:
    """What the QA pairs of one easy-VQA image say about its single object."""

    image_id: int
    shapes: set[str] = field(default_factory=set)
    colors: set[str] = field(default_factory=set)
    absent_shapes: set[str] = field(default_factory=set)
    absent_colors: set[str] = field(default_factory=set)

    def add(self, question: str, answer: str) -> None:
        if answer in EASYVQA_SHAPES:
            self.shapes.add(answer)
            return
        if answer in EASYVQA_COLORS:
            self.colors.add(answer)
            return
        words = re.findall(r"[a-z]+", question.lower())
        negated = "not" in words or "no" in words
        holds = (answer == "yes") != negated
        for word in words:
            if word in EASYVQA_SHAPES:
                (self.shapes if holds else self.absent_shapes).add(word)
            elif word in EASYVQA_COLORS:
                (self.colors if holds else self.absent_colors).add(word)

    def _resolve(self, kind: str, present: set[str], absent: set[str], vocabulary: tuple[str, ...]) -> str:
        if present & absent:
            raise ValueError(
                f"easy-VQA image {self.image_id}: its questions say {kind} {present & absent} "
                "is both present and absent"
            )
        if len(present) > 1:
            raise ValueError(f"easy-VQA image {self.image_id}: its questions name several {kind}s {present}")
        if present:
            return next(iter(present))
        remaining = [value for value in vocabulary if value not in absent]
        return remaining[0] if len(remaining) == 1 else ""

    @property
    def shape(self) -> str:
        """The object's shape, or "" when the questions do not determine it."""
        return self._resolve("shape", self.shapes, self.absent_shapes, EASYVQA_SHAPES)

    @property
    def color(self) -> str:
        """The object's colour, or "" when the questions do not determine it."""
        return self._resolve("colour", self.colors, self.absent_colors, EASYVQA_COLORS)


def captions_from_facts(shape: str, color: str) -> list[str]:
    """Deterministic captions for an object with ``shape`` and ``color`` ("" = unknown)."""
    if shape and color:
        templates = FULL_CAPTION_TEMPLATES
    elif shape:
        templates = SHAPE_ONLY_TEMPLATES
    elif color:
        templates = COLOR_ONLY_TEMPLATES
    else:
        return []
    return [template.format(shape=shape, color=color) for template in templates]


def image_facts(split: str) -> dict[int, ImageFacts]:
    """The facts of every image of ``split``, keyed by upstream image id."""
    texts, answers, image_ids, _ = _raw_split(_check_split(split))
    facts: dict[int, ImageFacts] = {}
    for question, answer, image_id in zip(texts, answers, image_ids):
        facts.setdefault(image_id, ImageFacts(image_id)).add(question, answer)
    return facts


def _build_captions(split: str) -> datasets.Dataset:
    _, _, _, paths = _raw_split(split)
    columns: dict[str, list] = {"image": [], "captions": [], "image_id": [], "shape": [], "color": []}
    without_facts = 0
    for image_id, facts in sorted(image_facts(split).items()):
        shape, color = facts.shape, facts.color
        captions = captions_from_facts(shape, color)
        if not captions:
            without_facts += 1
            continue
        columns["image"].append(paths[image_id])
        columns["captions"].append(captions)
        columns["image_id"].append(f"{split}-{image_id}")
        columns["shape"].append(shape)
        columns["color"].append(color)
    if without_facts:
        logger.info(
            "easy-VQA %s: %d image(s) have no shape or colour fact and get no caption", split, without_facts
        )
    features = with_extra_features("captioning", CAPTION_EXTRA_FEATURES)
    return datasets.Dataset.from_dict(columns, features=features, split=datasets.Split(split))


def load_easyvqa_captions(split: str = "train", *, use_cache: bool = True) -> datasets.Dataset:
    """One row per easy-VQA image in the ``captioning`` schema, plus ``shape``/``color`` fact columns."""
    _check_split(split)
    return cached_dataset(
        f"easyvqa-captions-{split}-{_package_key()}",
        lambda: _build_captions(split),
        split=split,
        use_cache=use_cache,
    )


CLASS_LABELS = ("shape", "color", "color_shape")


def _build_classes(split: str, label: str) -> datasets.Dataset:
    if label == "shape":
        names = list(EASYVQA_SHAPES)
    elif label == "color":
        names = list(EASYVQA_COLORS)
    else:
        names = [f"{color} {shape}" for color in EASYVQA_COLORS for shape in EASYVQA_SHAPES]
    _, _, _, paths = _raw_split(split)
    columns: dict[str, list] = {"image": [], "label": [], "image_id": []}
    for image_id, facts in sorted(image_facts(split).items()):
        name = {"shape": facts.shape, "color": facts.color}.get(label, f"{facts.color} {facts.shape}")
        if name not in names:  # a fact the questions leave undetermined: the image has no known label
            continue
        columns["image"].append(paths[image_id])
        columns["label"].append(names.index(name))
        columns["image_id"].append(f"{split}-{image_id}")
    features = datasets.Features(
        {"image": datasets.Image(), "label": datasets.ClassLabel(names=names), "image_id": datasets.Value("string")}
    )
    return datasets.Dataset.from_dict(columns, features=features, split=datasets.Split(split))


def load_easyvqa_classes(split: str = "test", *, label: str = "shape", use_cache: bool = True) -> datasets.Dataset:
    """easy-VQA images as a classification set for zero-shot evaluation: ``image``, ``label`` (a
    ``ClassLabel`` whose names are the class prompts' words), ``image_id``.

    ``label``: ``"shape"`` (3 classes), ``"color"`` (8) or ``"color_shape"`` (24, e.g. "blue circle"). Images
    whose label the questions do not determine are left out, as in the caption set.
    """
    _check_split(split)
    if label not in CLASS_LABELS:
        raise ValueError(f"easyvqa-classes: label must be one of {CLASS_LABELS}, got {label!r}")
    return cached_dataset(
        f"easyvqa-classes-{label}-{split}-{_package_key()}",
        lambda: _build_classes(split, label),
        split=split,
        use_cache=use_cache,
    )
