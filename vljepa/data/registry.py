"""Dataset registry: ``load_vl_dataset(name, split, **kwargs)`` for every VL-JEPA data source.

Each entry names its task schema (see :mod:`vljepa.data.schema`) and the loader that builds it. Loaders
are imported when first used, so importing :mod:`vljepa.data` stays cheap.

| name               | task       | source                                                             |
|--------------------|------------|--------------------------------------------------------------------|
| easyvqa            | vqa        | bundled ``easy_vqa`` package (train/test)                          |
| easyvqa-reworded   | vqa        | easy-VQA test questions in other words, by category (test only)    |
| easyvqa-paraphrased| vqa        | easy-VQA train questions, some paraphrased (train only)            |
| easyvqa-unseen-constructions | vqa | easy-VQA yes/no test questions in constructions no grammar uses |
| easyvqa-captions   | captioning | captions from each easy-VQA image's own QA facts                   |
| scenes             | captioning | procedural multi-object scenes (:mod:`vljepa.data.scenes`)         |
| scenes-reworded    | captioning | the same scenes captioned in other words (evaluation only)         |
| scenes-vqa         | vqa        | questions about the procedural scenes                              |
| streams            | stream     | procedural videos with event annotations (:mod:`.streams`)         |
| coco-karpathy      | captioning | ``dataset_coco.json`` (Karpathy split) + COCO images               |
| flickr30k          | captioning | ``dataset_flickr30k.json`` (Karpathy split) + Flickr30k images     |
| vqav2              | vqa        | VQAv2 questions + annotations JSON + COCO images                   |
| gqa                | vqa        | GQA questions JSON + images                                        |
| pope               | vqa        | POPE jsonl files + COCO val2014 images                             |
| tallyqa            | vqa        | TallyQA JSON + Visual Genome / COCO images                         |
| folder             | captioning or vqa | image folder + ``metadata.jsonl``/``metadata.csv``          |

Example:
    >>> from vljepa.data import load_vl_dataset
    >>> ds = load_vl_dataset("scenes", split="train", num_images=8)
    >>> sorted(ds.column_names)[:3]
    ['captions', 'image', 'image_id']
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

import datasets


@dataclass(frozen=True)
class DatasetEntry:
    """A registered data source: its task schema and ``module:function`` loader."""

    name: str
    task: str
    loader: str
    description: str

    def load_function(self) -> Callable[..., datasets.Dataset | datasets.IterableDataset]:
        module_name, function_name = self.loader.split(":")
        return getattr(importlib.import_module(module_name), function_name)


_REGISTRY: dict[str, DatasetEntry] = {}


def register_vl_dataset(name: str, *, task: str, loader: str, description: str) -> None:
    """Register ``loader`` (``"package.module:function"``, called as ``function(split=..., **kwargs)``)."""
    if name in _REGISTRY:
        raise ValueError(f"dataset name {name!r} is already registered")
    if task not in ("captioning", "vqa", "stream", "classification", "captioning or vqa"):
        raise ValueError(f"task {task!r} must be captioning, vqa, stream or classification")
    _REGISTRY[name] = DatasetEntry(name=name, task=task, loader=loader, description=description)


for _name, _task, _loader, _description in (
    ("easyvqa", "vqa", "vljepa.data.easyvqa:load_easyvqa", "bundled easy-VQA questions"),
    (
        "easyvqa-reworded",
        "vqa",
        "vljepa.data.reworded:load_easyvqa_reworded",
        "easy-VQA test questions in other words, one category per row (robustness evaluation)",
    ),
    (
        "easyvqa-unseen-constructions",
        "vqa",
        "vljepa.data.unseen_constructions:load_easyvqa_unseen_constructions",
        "easy-VQA yes/no test questions in polar-question constructions neither grammar uses (evaluation only)",
    ),
    (
        "easyvqa-paraphrased",
        "vqa",
        "vljepa.data.paraphrase:load_easyvqa_paraphrased",
        "easy-VQA train questions, a share paraphrased by a grammar disjoint from easyvqa-reworded",
    ),
    (
        "easyvqa-captions",
        "captioning",
        "vljepa.data.easyvqa:load_easyvqa_captions",
        "easy-VQA images captioned from their QA facts",
    ),
    (
        "easyvqa-classes",
        "classification",
        "vljepa.data.easyvqa:load_easyvqa_classes",
        "easy-VQA images labelled by shape, colour or both (zero-shot classification)",
    ),
    ("scenes", "captioning", "vljepa.data.scenes:load_scenes", "procedural multi-object scenes"),
    (
        "scenes-reworded",
        "captioning",
        "vljepa.data.scenes:load_scenes_reworded",
        "the same procedural scenes, captioned by a grammar training never uses",
    ),
    ("scenes-vqa", "vqa", "vljepa.data.scenes:load_scenes_vqa", "questions about procedural scenes"),
    ("streams", "stream", "vljepa.data.streams:load_streams", "procedural videos with event annotations"),
    (
        "coco-karpathy",
        "captioning",
        "vljepa.data.adapters.karpathy:load_coco_karpathy",
        "COCO Captions, Karpathy split",
    ),
    ("flickr30k", "captioning", "vljepa.data.adapters.karpathy:load_flickr30k", "Flickr30k, Karpathy split"),
    ("vqav2", "vqa", "vljepa.data.adapters.vqav2:load_vqav2", "VQAv2 questions and annotations"),
    ("gqa", "vqa", "vljepa.data.adapters.gqa:load_gqa", "GQA questions"),
    ("pope", "vqa", "vljepa.data.adapters.pope:load_pope", "POPE object-hallucination yes/no questions"),
    ("tallyqa", "vqa", "vljepa.data.adapters.tallyqa:load_tallyqa", "TallyQA counting questions"),
    (
        "folder",
        "captioning or vqa",
        "vljepa.data.adapters.folder:load_image_folder",
        "an image folder with metadata.jsonl or metadata.csv",
    ),
    (
        "hub",
        "captioning or vqa",
        "vljepa.data.adapters.hub:load_hub_dataset",
        "any datasets.load_dataset source (a Hub id, or imagefolder with data_dir) with named columns",
    ),
):
    register_vl_dataset(_name, task=_task, loader=_loader, description=_description)


def list_vl_datasets() -> list[str]:
    """Registered dataset names, sorted."""
    return sorted(_REGISTRY)


def vl_dataset_entry(name: str) -> DatasetEntry:
    """The registry entry of ``name``; an unknown name raises ``ValueError`` listing the known names."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown dataset {name!r}; known datasets: {', '.join(list_vl_datasets())}")
    return _REGISTRY[name]


def load_vl_dataset(name: str, split: str = "train", **kwargs) -> datasets.Dataset | datasets.IterableDataset:
    """Load the registered dataset ``name`` at ``split`` in its task schema.

    ``kwargs`` go to the loader (e.g. ``root=`` for the adapters, ``num_images=`` for ``scenes``);
    see each loader's docstring.
    """
    return vl_dataset_entry(name).load_function()(split=split, **kwargs)
