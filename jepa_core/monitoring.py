"""Representation-collapse monitoring for JEPA embeddings (predictions and targets).

Pure functions take a batch of embeddings ``Tensor[N, D]`` and return numbers:

* :func:`per_dimension_std`: std of each dimension of the L2-normalised embeddings (as in SimSiam's collapse
  check): about ``1/sqrt(D)`` when the embeddings spread over the sphere, 0 when they collapse to a point.
* :func:`rankme`: the effective rank of Garrido et al. (2023), ``exp(-sum_k p_k log p_k)`` with
  ``p_k = sigma_k / sum(sigma) + eps`` over the singular values ``sigma`` of the embedding matrix; between
  1 (rank one) and ``min(N, D)`` (flat spectrum).
* :func:`mean_pairwise_cosine`: mean cosine similarity over all pairs ``i != j``; near 1 when collapsed.

:class:`EmbeddingMonitor` keeps the most recent embeddings of one stream (a bounded buffer, so the rank is
measured over a few hundred vectors even with small batches), returns named scalars to log and warns once
when collapse is detected.

Example::

    >>> import torch
    >>> monitor = EmbeddingMonitor("target", config=CollapseMonitorConfig(min_vectors=64))
    >>> monitor.update(torch.randn(128, 32))
    >>> sorted(monitor.compute())[:2]
    ['target/collapsed', 'target/cosine_mean']
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

logger = logging.getLogger(__name__)


class NonFiniteLossError(RuntimeError):
    """The training loss was NaN or infinite and ``on_nonfinite_loss`` is ``"stop"`` (either trainer)."""


def _as_matrix(embeddings: torch.Tensor) -> torch.Tensor:
    """``[..., D]`` -> detached float32 ``[N, D]``."""
    if embeddings.dim() < 2:
        raise ValueError(f"embeddings must have shape [N, D] (or [..., D]), got {tuple(embeddings.shape)}")
    return embeddings.detach().reshape(-1, embeddings.shape[-1]).float()


def per_dimension_std(embeddings: torch.Tensor) -> torch.Tensor:
    """Std over the batch of each dimension of the L2-normalised embeddings. ``[N, D]`` -> ``[D]``."""
    matrix = _as_matrix(embeddings)
    if matrix.shape[0] < 2:
        raise ValueError(f"per_dimension_std needs at least 2 embeddings, got {matrix.shape[0]}")
    return F.normalize(matrix, dim=-1).std(dim=0)


def rankme(embeddings: torch.Tensor, *, eps: float = 1e-7) -> float:
    """RankMe effective rank (Garrido et al., 2023) of ``[N, D]`` embeddings; 0.0 for an all-zero matrix."""
    singular_values = torch.linalg.svdvals(_as_matrix(embeddings).double())
    total = singular_values.sum()
    if total <= 0:
        return 0.0
    p = singular_values / total + eps
    return float(torch.exp(-(p * p.log()).sum()))


def mean_pairwise_cosine(embeddings: torch.Tensor) -> float:
    """Mean cosine similarity over all ordered pairs ``i != j`` of ``[N, D]`` embeddings, in O(N D)."""
    units = F.normalize(_as_matrix(embeddings), dim=-1).double()
    n = units.shape[0]
    if n < 2:
        raise ValueError(f"mean_pairwise_cosine needs at least 2 embeddings, got {n}")
    # |sum_i u_i|^2 = sum_i |u_i|^2 + sum_{i != j} u_i . u_j
    off_diagonal = units.sum(0).square().sum() - units.square().sum()
    return float(off_diagonal / (n * (n - 1)))


def embedding_statistics(embeddings: torch.Tensor, *, eps: float = 1e-7) -> dict[str, float]:
    """All collapse statistics of ``[N, D]`` embeddings, by name (no prefix)."""
    matrix = _as_matrix(embeddings)
    n, d = matrix.shape
    std = per_dimension_std(matrix)
    rank = rankme(matrix, eps=eps)
    return {
        "std_mean": float(std.mean()),
        "std_min": float(std.min()),
        # 1.0 for embeddings spread evenly over the sphere, 0.0 for a single point: comparable across D.
        "std_ratio": float(std.mean()) * math.sqrt(d),
        "rankme": rank,
        "rankme_fraction": rank / min(n, d),
        "cosine_mean": mean_pairwise_cosine(matrix),
        "num_vectors": float(n),
    }


@dataclass
class CollapseMonitorConfig:
    """When an :class:`EmbeddingMonitor` measures and when it calls the embeddings collapsed."""

    buffer_size: int = field(
        default=512, metadata={"help": "Most recent embeddings kept; statistics are computed over these."}
    )
    min_vectors: int = field(
        default=256, metadata={"help": "No collapse verdict before the buffer holds this many embeddings."}
    )
    min_rank_fraction: float = field(
        default=0.05, metadata={"help": "Collapse when RankMe < this fraction of min(N, D)."}
    )
    min_std_ratio: float = field(
        default=0.1,
        metadata={"help": "Collapse when mean per-dimension std of normalised embeddings < this / sqrt(D)."},
    )
    eps: float = field(default=1e-7, metadata={"help": "Epsilon added to the normalised singular values."})

    def __post_init__(self) -> None:
        if self.buffer_size < 2:
            raise ValueError(f"buffer_size must be >= 2, got {self.buffer_size}")
        if not 2 <= self.min_vectors <= self.buffer_size:
            raise ValueError(f"min_vectors must be in [2, buffer_size={self.buffer_size}], got {self.min_vectors}")
        if not 0.0 <= self.min_rank_fraction <= 1.0:
            raise ValueError(f"min_rank_fraction must be in [0, 1], got {self.min_rank_fraction}")
        if not 0.0 <= self.min_std_ratio <= 1.0:
            raise ValueError(f"min_std_ratio must be in [0, 1], got {self.min_std_ratio}")
        if self.eps <= 0:
            raise ValueError(f"eps must be > 0, got {self.eps}")


class EmbeddingMonitor:
    """Collapse statistics over the most recent embeddings of one stream (e.g. "pred" or "target").

    ``update(embeddings)`` takes ``Tensor[N, D]`` (or ``[..., D]``), detached and kept on its device;
    ``compute()`` returns ``{"<name>/std_mean": ..., "<name>/rankme": ..., "<name>/collapsed": 0.0 or 1.0, ...}``
    and logs a warning the first time the embeddings look collapsed.
    """

    def __init__(self, name: str, *, config: CollapseMonitorConfig | None = None) -> None:
        if not name or "/" in name:
            raise ValueError(f"monitor name must be non-empty without '/', got {name!r}")
        self.name = name
        self.config = config or CollapseMonitorConfig()
        self._buffer: torch.Tensor | None = None
        self.warned = False

    @property
    def num_vectors(self) -> int:
        return 0 if self._buffer is None else self._buffer.shape[0]

    def reset(self) -> None:
        self._buffer = None

    def update(self, embeddings: torch.Tensor) -> None:
        matrix = _as_matrix(embeddings)
        if self._buffer is not None and self._buffer.shape[1] != matrix.shape[1]:
            raise ValueError(
                f"monitor {self.name!r}: embedding size changed from {self._buffer.shape[1]} to {matrix.shape[1]}"
            )
        merged = matrix if self._buffer is None else torch.cat([self._buffer, matrix.to(self._buffer.device)])
        self._buffer = merged[-self.config.buffer_size:].clone()

    def is_collapsed(self, stats: dict[str, float]) -> bool:
        """The verdict on unprefixed ``stats`` from :func:`embedding_statistics`."""
        if stats["num_vectors"] < self.config.min_vectors:
            return False
        return stats["rankme_fraction"] < self.config.min_rank_fraction or (
            stats["std_ratio"] < self.config.min_std_ratio
        )

    def compute(self) -> dict[str, float]:
        """Named scalars to log (empty before two embeddings were seen)."""
        if self.num_vectors < 2:
            return {}
        stats = embedding_statistics(self._buffer, eps=self.config.eps)
        collapsed = self.is_collapsed(stats)
        if collapsed and not self.warned:
            self.warned = True
            logger.warning(
                "Possible representation collapse in %r embeddings over the last %d vectors: RankMe %.2f "
                "(%.3f of min(N, D); threshold %.3f), per-dimension std ratio %.3f (threshold %.3f), mean "
                "cosine %.3f. Check the learning rate, the loss weights and the target encoder (stop-gradient).",
                self.name, int(stats["num_vectors"]), stats["rankme"], stats["rankme_fraction"],
                self.config.min_rank_fraction, stats["std_ratio"], self.config.min_std_ratio, stats["cosine_mean"],
            )
        stats["collapsed"] = float(collapsed)
        return {f"{self.name}/{key}": value for key, value in sorted(stats.items())}
