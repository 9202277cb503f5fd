"""VL-JEPA data: one schema per task, a registry of sources, robust image loading.

* :mod:`vljepa.data.schema` — ``captioning``/``vqa``/``stream`` features and validators.
* :mod:`vljepa.data.registry` — ``load_vl_dataset(name, split, **kwargs)``: start reading here.
* :mod:`vljepa.data.images` — ``load_image`` with the bad-input policy and ``BadInputReport``.
* :mod:`vljepa.data.easyvqa`, :mod:`.scenes` (drawn by :mod:`.scene_render`, described by :mod:`.scene_text`),
  :mod:`.streams` — bundled and generated data; :mod:`.cache` — Arrow caches of generated datasets.
* :mod:`vljepa.data.adapters` — COCO/Flickr30k (Karpathy), VQAv2, GQA, POPE, TallyQA, image folders.

Example:
    >>> from vljepa.data import load_vl_dataset
    >>> test = load_vl_dataset("easyvqa", split="test")
    >>> test[0]["question"], test[0]["answers"], test[0]["question_type"]
    ('what is the red shape?', ['triangle'], 'shape')
"""

from vljepa.data.images import BadInputError, BadInputReport, ImageLoader, load_image
from vljepa.data.registry import (
    DatasetEntry,
    list_vl_datasets,
    load_vl_dataset,
    register_vl_dataset,
    vl_dataset_entry,
)
from vljepa.data.schema import (
    CAPTION_FEATURES,
    STREAM_FEATURES,
    VQA_FEATURES,
    SchemaError,
    features_for,
    undecoded_images,
    validate_dataset,
    validate_example,
)

__all__ = [
    "CAPTION_FEATURES",
    "STREAM_FEATURES",
    "VQA_FEATURES",
    "BadInputError",
    "BadInputReport",
    "DatasetEntry",
    "ImageLoader",
    "SchemaError",
    "features_for",
    "list_vl_datasets",
    "load_image",
    "load_vl_dataset",
    "register_vl_dataset",
    "undecoded_images",
    "validate_dataset",
    "validate_example",
    "vl_dataset_entry",
]
