"""Image-text retrieval metrics (COCO / Flickr30k protocol), computed in bounded memory.

Several captions describe each image: ``text_image_ids[j]`` is the row of ``image_emb`` that caption
``j`` describes.

* text-to-image: caption ``j`` is a hit at K when its image ranks in the top K images.
* image-to-text: image ``i`` is a hit at K when *any* of its captions ranks in the top K captions,
  i.e. when its best-ranked caption does.

Ties count against the model: the rank of a positive (0 = first) is the number of *negatives* whose
cosine similarity is at least the positive's (for image-to-text, the best positive's) minus
``tie_tolerance`` (default ``1e-5``, which absorbs float32 rounding between the matrix product that
scores negatives and the dot product that scores positives). So a collapsed model, whose embeddings
are all equal, gets recall 0 rather than 1, and a caption duplicated word for word under another
image counts as a negative that ties. Matrix products run at full float32 precision (no TF32).

Memory: the ``N x M`` similarity matrix is never materialised. Rows and columns are processed in
blocks of ``chunk_size``, so the extra memory is a few ``chunk_size x chunk_size`` blocks (about 25 MB
at the default 2048) plus a few ``O(N + M)`` index vectors: 100k images x 500k captions fit easily.
Time grows with ``N x M``: 10k x 50k (D = 32) took about 40 s on 2 busy CPU cores; on a GPU, pass
tensors already on it.

Images that no caption describes take part only as distractors for text-to-image retrieval; they
are left out of image-to-text recall (their rank is reported as ``-1``) and a warning is logged.

Example::

    >>> import torch
    >>> images = torch.eye(2)
    >>> texts = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    >>> recall_at_k(images, texts, [0, 1, 1], ks=(1,))
    {'i2t_r1': 1.0, 't2i_r1': 1.0}
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

logger = logging.getLogger(__name__)

DEFAULT_CHUNK_SIZE = 2048
TIE_TOLERANCE = 1e-5


@contextmanager
def _full_float32_matmul() -> Iterator[None]:
    """Disable TF32 / reduced-precision float32 matmuls for the duration (ties need exact-ish scores)."""
    previous = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(previous)


@dataclass
class RetrievalRanks:
    """Per-query ranks (0 = first) and, when asked for, the indices of the top-scoring items.

    Attributes:
        i2t_rank: ``[N]`` rank of each image's best caption among all captions; ``-1`` for images
            without captions.
        t2i_rank: ``[M]`` rank of each caption's image among all images.
        positive_scores: ``[M]`` cosine similarity of each caption with its own image.
        i2t_top: ``[N, min(top_k, M)]`` indices of the highest-scoring captions per image, best first.
        t2i_top: ``[M, min(top_k, N)]`` indices of the highest-scoring images per caption, best first.
    """

    i2t_rank: torch.Tensor
    t2i_rank: torch.Tensor
    positive_scores: torch.Tensor
    i2t_top: torch.Tensor
    t2i_top: torch.Tensor


def _as_float_matrix(values: np.ndarray | torch.Tensor, name: str) -> torch.Tensor:
    tensor = torch.as_tensor(values)
    if tensor.ndim != 2:
        raise ValueError(f"{name} must be a 2-D [rows, dim] array, got shape {tuple(tensor.shape)}")
    if tensor.shape[0] == 0:
        raise ValueError(f"{name} is empty: retrieval needs at least one row")
    tensor = tensor.detach().to(torch.float32)
    if not torch.isfinite(tensor).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return F.normalize(tensor, dim=-1)


def _as_row_ids(text_image_ids: Sequence[int] | np.ndarray | torch.Tensor) -> torch.Tensor:
    """``[M]`` int64 row indices; floats (``0.5``, also ``1.0``) and booleans are refused, never truncated."""
    array = text_image_ids.detach().cpu().numpy() if isinstance(text_image_ids, torch.Tensor) else np.asarray(
        text_image_ids
    )
    array = array.reshape(-1)
    if array.size and (array.dtype == np.bool_ or not np.issubdtype(array.dtype, np.integer)):
        position = 0
        if np.issubdtype(array.dtype, np.floating):
            fractional = np.nonzero(~np.isfinite(array) | (array != np.round(array)))[0]
            position = int(fractional[0]) if fractional.size else 0
        raise TypeError(
            f"text_image_ids must be integer row indices of image_emb, got dtype {array.dtype} "
            f"(e.g. text_image_ids[{position}] = {array[position]!r}); convert exact ids with .astype(int)"
        )
    return torch.as_tensor(array.astype(np.int64, copy=False))


def _check_inputs(
    image_emb: np.ndarray | torch.Tensor,
    text_emb: np.ndarray | torch.Tensor,
    text_image_ids: Sequence[int] | np.ndarray | torch.Tensor,
    chunk_size: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    images = _as_float_matrix(image_emb, "image_emb")
    texts = _as_float_matrix(text_emb, "text_emb").to(images.device)
    if images.shape[1] != texts.shape[1]:
        raise ValueError(
            f"image_emb has dimension {images.shape[1]} but text_emb has {texts.shape[1]}: "
            "both must live in the same embedding space"
        )
    ids = _as_row_ids(text_image_ids).to(images.device)
    if ids.numel() != texts.shape[0]:
        raise ValueError(
            f"text_image_ids has {ids.numel()} entries but text_emb has {texts.shape[0]} rows: "
            "give one image row index per caption"
        )
    bad = (ids < 0) | (ids >= images.shape[0])
    if bad.any():
        first = int(torch.nonzero(bad)[0])
        raise ValueError(
            f"text_image_ids[{first}] = {int(ids[first])} is not a row of image_emb "
            f"(which has {images.shape[0]} rows)"
        )
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    return images, texts, ids


def _merge_top(
    best_scores: torch.Tensor, best_idx: torch.Tensor, scores: torch.Tensor, offset: int, k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Merge a block's scores ``[b, c]`` into running top-k lists ``[b, <=k]``."""
    cols = torch.arange(offset, offset + scores.shape[1], device=scores.device).expand_as(scores)
    all_scores = torch.cat([best_scores, scores], dim=1)
    all_idx = torch.cat([best_idx, cols], dim=1)
    top = torch.topk(all_scores, min(k, all_scores.shape[1]), dim=1)
    return top.values, torch.gather(all_idx, 1, top.indices)


def _count_higher(
    queries: torch.Tensor,
    keys: torch.Tensor,
    thresholds: torch.Tensor,
    pair_queries: torch.Tensor,
    pair_keys: torch.Tensor,
    chunk_size: int,
    top_k: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """For each query row: how many keys that are not its positives score at least its threshold.

    ``(pair_queries[p], pair_keys[p])`` are the positive (query, key) pairs. Every key at or above the
    threshold is counted, then the positives among them are subtracted; the positives are looked up
    per block, so no ``[Q, K]`` mask is ever built. Also returns the indices of the ``top_k``
    highest-scoring keys per query (``[Q, min(top_k, K)]``).
    """
    device = queries.device
    counts = torch.zeros(queries.shape[0], dtype=torch.long, device=device)
    top_k = min(top_k, keys.shape[0])
    tops = torch.zeros(queries.shape[0], top_k, dtype=torch.long, device=device)
    num_key_blocks = -(-keys.shape[0] // chunk_size)
    num_query_blocks = -(-queries.shape[0] // chunk_size)
    # Positive pairs grouped by (query block, key block); offsets[b]:offsets[b + 1] is block pair b.
    block_of_pair = (pair_queries // chunk_size) * num_key_blocks + pair_keys // chunk_size
    order = torch.argsort(block_of_pair, stable=True)
    sorted_queries, sorted_keys = pair_queries[order], pair_keys[order]
    per_block = torch.bincount(block_of_pair, minlength=num_query_blocks * num_key_blocks)
    offsets = [0, *torch.cumsum(per_block, 0).tolist()]
    for q_block_id, q_start in enumerate(range(0, queries.shape[0], chunk_size)):
        q_block = queries[q_start : q_start + chunk_size]
        q_thresh = thresholds[q_start : q_start + chunk_size, None]
        best_scores = q_block.new_empty(q_block.shape[0], 0)
        best_idx = torch.empty(q_block.shape[0], 0, dtype=torch.long, device=device)
        for k_block_id, k_start in enumerate(range(0, keys.shape[0], chunk_size)):
            scores = q_block @ keys[k_start : k_start + chunk_size].T
            above = scores >= q_thresh
            counts[q_start : q_start + chunk_size] += above.sum(dim=1)
            block = q_block_id * num_key_blocks + k_block_id
            low, high = offsets[block], offsets[block + 1]
            if high > low:
                rows, cols = sorted_queries[low:high], sorted_keys[low:high]
                counts.index_add_(0, rows, -above[rows - q_start, cols - k_start].long())
            if top_k:
                best_scores, best_idx = _merge_top(best_scores, best_idx, scores, k_start, top_k)
        if top_k:
            tops[q_start : q_start + chunk_size] = best_idx
    return counts, tops


def retrieval_ranks(
    image_emb: np.ndarray | torch.Tensor,
    text_emb: np.ndarray | torch.Tensor,
    text_image_ids: Sequence[int] | np.ndarray | torch.Tensor,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    top_k: int = 0,
    tie_tolerance: float = TIE_TOLERANCE,
) -> RetrievalRanks:
    """Rank of every query's positive in both directions, in blocks of ``chunk_size`` rows/columns.

    Args:
        image_emb: ``[N, D]`` image embeddings (normalised here).
        text_emb: ``[M, D]`` caption embeddings (normalised here).
        text_image_ids: ``[M]`` row of ``image_emb`` described by each caption.
        chunk_size: block size in rows and columns; bounds memory, never changes the result.
        top_k: also return the indices of the ``top_k`` best matches per query (0: none).
        tie_tolerance: a negative within this much below the positive still counts as a tie, and ties
            count against the model.

    Computation runs on the device of ``image_emb``.
    """
    images, texts, ids = _check_inputs(image_emb, text_emb, text_image_ids, chunk_size)
    if top_k < 0:
        raise ValueError(f"top_k must be >= 0, got {top_k}")
    if tie_tolerance < 0:
        raise ValueError(f"tie_tolerance must be >= 0, got {tie_tolerance}")
    num_images = images.shape[0]
    positive_scores = (texts * images[ids]).sum(dim=-1)
    best_positive = torch.full((num_images,), -torch.inf, device=images.device)
    best_positive = best_positive.scatter_reduce(0, ids, positive_scores, reduce="amax")
    caption_rows = torch.arange(texts.shape[0], device=images.device)
    with _full_float32_matmul():
        t2i_rank, t2i_top = _count_higher(
            texts, images, positive_scores - tie_tolerance, caption_rows, ids, chunk_size, top_k
        )
        i2t_rank, i2t_top = _count_higher(
            images, texts, best_positive - tie_tolerance, ids, caption_rows, chunk_size, top_k
        )
    has_caption = torch.isfinite(best_positive)
    i2t_rank = torch.where(has_caption, i2t_rank, torch.full_like(i2t_rank, -1))
    return RetrievalRanks(
        i2t_rank=i2t_rank.cpu(),
        t2i_rank=t2i_rank.cpu(),
        positive_scores=positive_scores.cpu(),
        i2t_top=i2t_top.cpu(),
        t2i_top=t2i_top.cpu(),
    )


def recall_from_ranks(ranks: RetrievalRanks, ks: Sequence[int] = (1, 5, 10)) -> dict[str, float]:
    """``{i2t_rK, t2i_rK}`` fractions in [0, 1] from precomputed ranks (images without captions skipped)."""
    ks = _check_ks(ks)
    evaluated = ranks.i2t_rank[ranks.i2t_rank >= 0]
    skipped = ranks.i2t_rank.numel() - evaluated.numel()
    if skipped:
        logger.warning("%d image(s) have no caption and are left out of image-to-text recall", skipped)
    if evaluated.numel() == 0:
        raise ValueError("no image has a caption: image-to-text recall is undefined")
    metrics: dict[str, float] = {}
    for k in ks:
        metrics[f"i2t_r{k}"] = float((evaluated < k).double().mean())
    for k in ks:
        metrics[f"t2i_r{k}"] = float((ranks.t2i_rank < k).double().mean())
    return metrics


def _check_ks(ks: Sequence[int]) -> tuple[int, ...]:
    ks = tuple(int(k) for k in ks)
    if not ks or any(k < 1 for k in ks):
        raise ValueError(f"ks must be a non-empty list of positive integers, got {ks}")
    return ks


def recall_at_k(
    image_emb: np.ndarray | torch.Tensor,
    text_emb: np.ndarray | torch.Tensor,
    text_image_ids: Sequence[int] | np.ndarray | torch.Tensor,
    ks: Sequence[int] = (1, 5, 10),
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> dict[str, float]:
    """Recall@K both ways: keys ``i2t_r{k}`` then ``t2i_r{k}`` for each ``k`` in ``ks``, in [0, 1].

    Args:
        image_emb: ``[N, D]`` image embeddings.
        text_emb: ``[M, D]`` caption embeddings.
        text_image_ids: ``[M]``; caption ``j`` describes image row ``text_image_ids[j]``.
        ks: the cut-offs K.
        chunk_size: rows/columns per block (bounds memory; the result does not depend on it).
    """
    ks = _check_ks(ks)
    return recall_from_ranks(retrieval_ranks(image_emb, text_emb, text_image_ids, chunk_size=chunk_size), ks)
