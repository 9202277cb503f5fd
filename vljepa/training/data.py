"""Training stages and their data order, for :mod:`vljepa.training.trainer`.

A stage is a list of examples ``(image row, query, target options)`` over one dataset:

* caption stage (query-free): one example per image, empty query, a caption drawn per epoch;
* query stage: one example per question, query = question, target = the most common answer.

The order is a pure function of ``(seed, stage, epoch)``, so a run resumes at an exact data position
from ``(stage index, micro-batch index)``. Each global batch is split into equal per-process slices;
the last incomplete global batch of an epoch is dropped (equal batch sizes on all processes).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import datasets
import torch
from PIL import Image

from vljepa.data.images import ImageLoader, decode_image, image_context
from vljepa.data.schema import undecoded_images
from vljepa.training.feature_cache import FeatureCache, image_content_hash

logger = logging.getLogger(__name__)


@dataclass
class TrainingStage:
    """One training stage over one dataset.

    Attributes:
        name: ``"caption"`` or ``"query"``.
        dataset: the underlying dataset (captioning or VQA schema).
        queries: per example, the query text (empty for captions).
        target_options: per example, the possible target texts (one is drawn per epoch).
        image_rows: per example, the dataset row holding its image.
        epochs: how many passes over the examples.
        image_slots: per example, its row in the feature table (set by :func:`build_feature_table`).
        source: the dataset and split, for messages (``"easyvqa[train]"``).
    """

    name: str
    dataset: datasets.Dataset
    queries: list[str]
    target_options: list[list[str]]
    image_rows: list[int]
    epochs: float
    image_slots: list[int] | None = None
    source: str = "dataset"

    def __len__(self) -> int:
        return len(self.queries)

    def keep(self, examples: Sequence[int]) -> None:
        """Keep only ``examples`` (indices into the current examples), e.g. those whose image decodes."""
        self.queries = [self.queries[i] for i in examples]
        self.target_options = [self.target_options[i] for i in examples]
        self.image_rows = [self.image_rows[i] for i in examples]
        if self.image_slots is not None:
            self.image_slots = [self.image_slots[i] for i in examples]

    def image_source(self, row: int, undecoded: datasets.Dataset | None = None) -> tuple[object, str]:
        """The undecoded image of dataset ``row`` (``{"path", "bytes"}``) and its context for messages."""
        source = (undecoded if undecoded is not None else undecoded_images(self.dataset))[row]["image"]
        return source, image_context(f"{self.source} row {row}", source)

    def batches_per_epoch(self, global_batch_size: int) -> int:
        return len(self) // global_batch_size

    def total_micro_batches(self, global_batch_size: int) -> int:
        return math.floor(self.epochs * self.batches_per_epoch(global_batch_size))


def most_common_answer(answers: Sequence[str], where: str) -> str:
    if not answers:
        raise ValueError(f"{where}: no answers to train on (unannotated split?); use a split with answers")
    return Counter(answers).most_common(1)[0][0]


def caption_stage(dataset: datasets.Dataset, *, epochs: float, source: str) -> TrainingStage:
    captions = dataset["captions"]
    for row, options in enumerate(captions):
        if not options:
            raise ValueError(f"{source} row {row}: field 'captions' is empty; every image needs a caption")
    return TrainingStage(
        name="caption",
        dataset=dataset,
        queries=[""] * len(captions),
        target_options=[list(options) for options in captions],
        image_rows=list(range(len(captions))),
        epochs=epochs,
        source=source,
    )


def query_stage(dataset: datasets.Dataset, *, epochs: float, source: str) -> TrainingStage:
    questions = dataset["question"]
    targets = [[most_common_answer(a, f"{source} row {row}")] for row, a in enumerate(dataset["answers"])]
    return TrainingStage(
        name="query",
        dataset=dataset,
        queries=list(questions),
        target_options=targets,
        image_rows=list(range(len(questions))),
        epochs=epochs,
        source=source,
    )


def load_stages(args, accelerator=None) -> list[TrainingStage]:
    """The caption and/or query stages a :class:`~vljepa.training.arguments.TrainingArguments` asks for.

    With an ``accelerate.Accelerator``, the main process builds (and caches) each dataset first.
    """
    from vljepa.data import load_vl_dataset

    stages = []
    for name, dataset_name, split, kwargs, epochs in (
        ("caption", args.caption_dataset, args.caption_split, args.caption_dataset_kwargs, args.caption_epochs),
        ("query", args.query_dataset, args.query_split, args.query_dataset_kwargs, args.query_epochs),
    ):
        if dataset_name is None:
            continue
        first = accelerator.main_process_first() if accelerator is not None else contextlib.nullcontext()
        with first:
            dataset = load_vl_dataset(dataset_name, split, **json.loads(kwargs))
        if args.max_train_samples is not None:
            dataset = dataset.select(range(min(args.max_train_samples, len(dataset))))
        build = caption_stage if name == "caption" else query_stage
        stages.append(build(dataset, epochs=epochs, source=f"{dataset_name}[{split}]"))
    return stages


def first_rows_per_image(dataset: datasets.Dataset) -> dict[int, int]:
    """Row -> representative row with the same ``image_id`` (so each distinct image is decoded once)."""
    first: dict[str, int] = {}
    mapping: dict[int, int] = {}
    for row, image_id in enumerate(dataset["image_id"]):
        mapping[row] = first.setdefault(image_id, row)
    return mapping


def decode_stage_images(
    stage: TrainingStage, loader: ImageLoader, *, on_image: Callable[[int, Image.Image], None] | None = None
) -> None:
    """Decode each distinct image of a stage once (through :func:`vljepa.data.images.decode_image`, under
    ``loader``'s bad-input policy) and drop the examples whose image is bad.

    ``on_image(row, image)`` is called for every good image (``row``: the first row of its ``image_id``).
    Under ``"error"`` a bad image raises :class:`~vljepa.data.images.BadInputError` naming the dataset, row
    and file; under ``"skip"`` it is recorded in ``loader.report``. Decoding here, before the data order is
    built, keeps every batch full and the order a pure function of the seed (so resume stays exact).
    """
    undecoded = undecoded_images(stage.dataset)
    representative = first_rows_per_image(stage.dataset)
    good: dict[int, bool] = {}
    for row in stage.image_rows:
        first = representative[row]
        if first in good:
            continue
        source, context = stage.image_source(first, undecoded)
        image = loader(source, context=context)
        good[first] = image is not None
        if image is not None and on_image is not None:
            on_image(first, image)
    keep = [index for index, row in enumerate(stage.image_rows) if good[representative[row]]]
    if not keep:
        raise ValueError(
            f"{stage.source}: no image of the {stage.name} stage could be decoded ({loader.report.summary()}); "
            "see bad_inputs.json in the run folder"
        )
    if len(keep) < len(stage):
        logger.warning("%s: dropped %d of %d %s examples whose image is bad", stage.source,
                       len(stage) - len(keep), len(stage), stage.name)
        stage.keep(keep)


def build_feature_table(
    stages: Sequence[TrainingStage], cache: FeatureCache, encoder, *, batch_size: int, progress: bool,
    loader: ImageLoader | None = None,
) -> torch.Tensor:
    """Fill the cache for every training image and return the table ``[U, T, D]`` of distinct images.

    Sets ``stage.image_slots``. Images are identified by content hash, so the same picture used by two
    stages (or two datasets) is encoded and stored once. Images are decoded by :func:`decode_stage_images`
    under ``loader``'s policy (default: ``"error"``); examples with a bad image are dropped under ``"skip"``.
    """
    loader = loader if loader is not None else ImageLoader(on_bad_input="error")
    slot_of_hash: dict[str, int] = {}
    images_to_compute: dict[str, object] = {}
    for stage in stages:
        representative = first_rows_per_image(stage.dataset)
        hash_of_row: dict[int, str] = {}

        def hashed(row: int, image: Image.Image, hash_of_row: dict[int, str] = hash_of_row) -> None:
            image_hash = image_content_hash(image)
            hash_of_row[row] = image_hash
            if image_hash not in cache and image_hash not in images_to_compute:
                images_to_compute[image_hash] = image

        decode_stage_images(stage, loader, on_image=hashed)
        stage.image_slots = [
            slot_of_hash.setdefault(hash_of_row[representative[row]], len(slot_of_hash)) for row in stage.image_rows
        ]
    logger.info(
        "Feature table: %d distinct images, %d already cached, %d to compute",
        len(slot_of_hash), len(slot_of_hash) - len(images_to_compute), len(images_to_compute),
    )
    if images_to_compute:
        cache.compute(
            list(images_to_compute.values()), encoder, hashes=list(images_to_compute),
            batch_size=batch_size, progress=progress,
        )  # fmt: skip
    ordered = sorted(slot_of_hash, key=slot_of_hash.__getitem__)
    return cache.get(ordered)


def epoch_order(stage: TrainingStage, *, seed: int, stage_index: int, epoch: int) -> list[int]:
    """The example order of one epoch of a stage: a pure function of ``(seed, stage_index, epoch)``."""
    order = list(range(len(stage)))
    random.Random(f"{seed}-{stage_index}-{epoch}").shuffle(order)
    return order


def micro_batch_indices(
    stage: TrainingStage, *, seed: int, stage_index: int, micro_step: int, global_batch_size: int,
    process_index: int, num_processes: int,
) -> list[int]:
    """The example indices this process trains on at ``micro_step`` of the stage."""
    per_epoch = stage.batches_per_epoch(global_batch_size)
    epoch, position = divmod(micro_step, per_epoch)
    order = epoch_order(stage, seed=seed, stage_index=stage_index, epoch=epoch)
    start = position * global_batch_size
    local = global_batch_size // num_processes
    begin = start + process_index * local
    return order[begin : begin + local]


def draw_targets(stage: TrainingStage, indices: Sequence[int], *, seed: int, epoch: int) -> list[str]:
    """One target per example; with several options (captions) the draw depends on (seed, epoch, example)."""
    targets = []
    for index in indices:
        options = stage.target_options[index]
        if len(options) == 1:
            targets.append(options[0])
        else:
            targets.append(options[random.Random(f"{seed}-{epoch}-{index}").randrange(len(options))])
    return targets


def trained_pairs(
    stage: TrainingStage, *, seed: int, stage_index: int, micro_batches: int, global_batch_size: int
) -> list[tuple[str, str]]:
    """Every ``(query, target)`` pair the first ``micro_batches`` micro-batches of a stage train on (all
    processes together), in training order. A pure function of the stage and the seed, so a run and its
    resumption agree on it (see ``VLJEPATrainer._fill_target_memo``)."""
    per_epoch = stage.batches_per_epoch(global_batch_size)
    pairs: list[tuple[str, str]] = []
    for epoch in range(math.ceil(micro_batches / per_epoch) if per_epoch else 0):
        steps = min(per_epoch, micro_batches - epoch * per_epoch)
        indices = epoch_order(stage, seed=seed, stage_index=stage_index, epoch=epoch)[: steps * global_batch_size]
        targets = draw_targets(stage, indices, seed=seed, epoch=epoch)
        pairs.extend((stage.queries[index], target) for index, target in zip(indices, targets))
    return pairs


class MicroBatches(torch.utils.data.Dataset):
    """The micro-batches ``[start, stop)`` of a stage for one process, as a map-style dataset.

    Item ``k`` is a dict with ``queries``, ``targets`` and either ``visual_tokens [b, T, D]`` (rows of the
    feature table) or ``pixel_values [b, 3, H, W]`` (images decoded and preprocessed by the X-encoder's
    processor), so a ``DataLoader`` with workers can prepare batches in parallel with training.
    """

    def __init__(
        self, stage: TrainingStage, *, stage_index: int, start: int, stop: int, seed: int, global_batch_size: int,
        process_index: int, num_processes: int, table: torch.Tensor | None = None, preprocess=None,
    ) -> None:
        if table is None and preprocess is None:
            raise ValueError("MicroBatches needs a feature table or an image preprocessing function")
        self.stage, self.stage_index, self.start, self.stop = stage, stage_index, start, stop
        self.seed, self.global_batch_size = seed, global_batch_size
        self.process_index, self.num_processes = process_index, num_processes
        self.table, self.preprocess = table, preprocess
        self.undecoded = undecoded_images(stage.dataset) if table is None else None

    def __len__(self) -> int:
        return max(self.stop - self.start, 0)

    def __getitem__(self, k: int) -> dict:
        micro_step = self.start + k
        indices = micro_batch_indices(
            self.stage, seed=self.seed, stage_index=self.stage_index, micro_step=micro_step,
            global_batch_size=self.global_batch_size, process_index=self.process_index,
            num_processes=self.num_processes,
        )  # fmt: skip
        epoch = micro_step // self.stage.batches_per_epoch(self.global_batch_size)
        item = {
            "micro_step": micro_step,
            "queries": [self.stage.queries[i] for i in indices],
            "targets": draw_targets(self.stage, indices, seed=self.seed, epoch=epoch),
        }
        if self.table is not None:
            item["visual_tokens"] = self.table[[self.stage.image_slots[i] for i in indices]]
        else:
            images = []
            for i in indices:  # screened by decode_stage_images: a failure now names the file that changed
                source, context = self.stage.image_source(self.stage.image_rows[i], self.undecoded)
                images.append(decode_image(source, on_bad_input="error", context=context))
            item["pixel_values"] = self.preprocess(images)
        return item


def prefill_queries(model, stages: list) -> None:
    """Compute the predictor's query-context states (:meth:`~vljepa.encoders.predictor.Predictor.
    prefill_query_context`) of every question of the run now, in batches of equal length: the same set, so the
    same bits, in a run and in its resumption. Call it before the model is wrapped for distributed training."""
    predictor = getattr(model, "predictor", None)  # the dual encoder has none
    if predictor is not None and (computed := predictor.prefill_query_context([q for s in stages for q in s.queries])):
        logger.info("Query context: computed the states of the %d distinct questions of the run", computed)


def fill_target_memo(
    model, stages: list, micro_counts: list[int], *, seed: int, global_batch_size: int, dual_encoder: bool
) -> int:
    """Encode every target text of the run once, in a fixed order, before the first step; return the
    Y-encoder's memo size as it was (restored after training).

    A frozen Y-encoder memoises the embedding of each text the first time it meets it, and those numbers
    depend on the batch the text came in (its padding and shape change the kernels' rounding, ~1e-7). A
    resumed run starts with an empty memo mid-stage, so it met texts in other batches than the run it
    continues and its weights drifted (by up to 8e-4 on the default recipe). Filled here from the data
    order (a pure function of the seed) in sorted chunks, the memo holds the same bits in both runs.
    """
    y_encoder = model.y_encoder
    memo_size = y_encoder.memo_size
    if not y_encoder.frozen or memo_size == 0:
        return memo_size  # a trained Y-encoder does not memoise while training
    pairs = [
        pair for index, (stage, count) in enumerate(zip(stages, micro_counts))
        for pair in trained_pairs(stage, seed=seed, stage_index=index, micro_batches=count,
                                  global_batch_size=global_batch_size)
    ]  # fmt: skip
    queries, targets = [query for query, _ in pairs], [target for _, target in pairs]
    if dual_encoder:
        targets = model.compose(queries, targets)  # the dual encoder embeds "question answer" texts
    texts = sorted(set(targets))
    if len(texts) > memo_size:
        logger.info("%d distinct target texts exceed the Y-encoder memo (%d): not memoised while training, "
                    "so that a resumed run computes them as the uninterrupted one does", len(texts), memo_size)
        y_encoder.memo_size = 0
        return memo_size
    y_encoder.memo_size = memo_size + len(texts)  # evaluation texts cannot evict the training ones
    with torch.no_grad():
        for start in range(0, len(texts), 256):
            y_encoder.base_embeddings(texts[start : start + 256])
    logger.info("Y-encoder: memoised the %d distinct target texts of the run", len(texts))
    return memo_size
