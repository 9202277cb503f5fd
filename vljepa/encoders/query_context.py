"""The predictor's query context: a causal LM's lower layers read the query alone, frozen, cached per query.

Used by :mod:`vljepa.encoders.predictor` for ``predictor_query_context`` ``"lm_prefix"`` / ``"lm_residual"``:
the query is understood by a pretrained language model, as that model was trained (causal attention, no image),
before the predictor's trainable layers combine it with the visual tokens. Also holds the two helpers both
stacks use to call Hugging Face decoder layers with an explicit mask.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import torch
from torch import nn

logger = logging.getLogger(__name__)


class QueryContext(nn.Module):
    """The LM's lower layers run causally over the query alone (frozen), cached per distinct token sequence.

    ``forward(query_ids [B, Q], query_mask [B, Q]) -> [B, Q, hidden]``: for each query, the hidden states after
    ``len(layers)`` LM layers, exactly as :meth:`run` computes them for that query alone; padded positions
    hold zeros. The cache keys are the query's token ids, so equal questions share one entry; it holds at
    most ``max_entries`` queries (oldest dropped first) and is never saved.

    Example::

        >>> context = QueryContext(layers=lm.model.layers[:20], rotary_embedding=lm.model.rotary_emb,
        ...                        token_embeddings=lm.get_input_embeddings())   # doctest: +SKIP
        >>> context(ids, mask).shape                                               # [B, Q, 576]
    """

    def __init__(
        self,
        *,
        layers: nn.ModuleList,
        rotary_embedding: nn.Module,
        token_embeddings: nn.Embedding,
        attention_implementation: str = "sdpa",
        max_entries: int = 200_000,
    ) -> None:
        super().__init__()
        self.layers = layers
        self.rotary_embedding = rotary_embedding
        self.token_embeddings = token_embeddings
        self.attention_implementation = attention_implementation
        self.max_entries = max_entries
        self.requires_grad_(False)
        self._cache: dict[tuple[int, ...], torch.Tensor] = {}

    def clear_cache(self) -> None:
        self._cache.clear()

    @torch.no_grad()
    def run(self, query_ids: torch.Tensor, query_mask: torch.Tensor) -> torch.Tensor:
        """``[B, Q, hidden]`` states of right-padded queries through every layer (no cache)."""
        hidden = self.token_embeddings(query_ids)
        length = hidden.shape[1]
        position_ids = torch.arange(length, device=hidden.device).unsqueeze(0).expand(hidden.shape[0], -1)
        position_embeddings = self.rotary_embedding(hidden, position_ids)
        causal = torch.ones(length, length, dtype=torch.bool, device=hidden.device).tril()
        allowed = causal[None, None] & query_mask.bool()[:, None, None, :]
        allowed = allowed | torch.eye(length, dtype=torch.bool, device=hidden.device)[None, None]  # pad rows: no NaN
        mask = attention_mask_format(allowed, self.attention_implementation, hidden.dtype)
        for layer in self.layers:
            hidden = call_layer(layer, hidden, mask, position_embeddings, position_ids)
        return hidden * query_mask.unsqueeze(-1).to(hidden.dtype)

    def prefill(self, keys: Iterable[tuple[int, ...]], batch_size: int = 256) -> int:
        """Compute and cache the states of these token sequences now; return how many were new.

        Sequences of equal length run together, unpadded, in sorted order: many times faster than one at a time,
        and the same bits whenever the same set is prefilled (a run and its resumption prefill the same queries).
        """
        todo = sorted({key for key in keys if key and key not in self._cache})
        if len(self._cache) + len(todo) > self.max_entries:
            logger.warning("Query context: %d new queries would overflow the cache of %d; not prefilled, each is "
                           "computed when it first comes (evicting the oldest)", len(todo), self.max_entries)
            return 0
        by_length: dict[int, list[tuple[int, ...]]] = {}
        for key in todo:
            by_length.setdefault(len(key), []).append(key)
        device = self.token_embeddings.weight.device
        for group in by_length.values():
            for start in range(0, len(group), batch_size):
                chunk = group[start : start + batch_size]
                ids = torch.tensor(chunk, dtype=torch.long, device=device)
                for key, states in zip(chunk, self.run(ids, torch.ones_like(ids, dtype=torch.bool))):
                    self._cache[key] = states.clone()
        return len(todo)

    def forward(self, query_ids: torch.Tensor, query_mask: torch.Tensor) -> torch.Tensor:
        lengths = query_mask.sum(dim=1).tolist()
        keys = [tuple(ids[:n].tolist()) for ids, n in zip(query_ids, lengths)]
        missing = [i for i, key in enumerate(keys) if key and key not in self._cache]  # empty: no states
        if missing:
            if len(self._cache) + len(missing) > self.max_entries:
                for old in list(self._cache)[: len(self._cache) + len(missing) - self.max_entries]:
                    del self._cache[old]
            for key in dict.fromkeys(keys[i] for i in missing):
                # One query at a time, unpadded: its states are a function of the query alone (not of the
                # batch it first came in), so a resumed run and an uninterrupted one read the same bits.
                ids = torch.tensor([key], dtype=torch.long, device=query_ids.device)
                self._cache[key] = self.run(ids, torch.ones_like(ids, dtype=torch.bool))[0].detach()
        out = torch.zeros(
            (*query_ids.shape, self.token_embeddings.embedding_dim),
            dtype=self.token_embeddings.weight.dtype, device=query_ids.device,
        )
        for row, (key, n) in enumerate(zip(keys, lengths)):
            if n:
                out[row, :n] = self._cache[key].to(out.device, out.dtype)
        return out


def attention_mask_format(allowed: torch.Tensor, attention_implementation: str, dtype: torch.dtype) -> torch.Tensor:
    """A boolean ``[B, 1, L, L]`` mask as the attention implementation takes it (sdpa: bool; eager: additive)."""
    if attention_implementation == "sdpa":
        return allowed
    additive = torch.zeros(allowed.shape, dtype=dtype, device=allowed.device)
    return additive.masked_fill(~allowed, torch.finfo(dtype).min)


def call_layer(layer: nn.Module, hidden, mask, position_embeddings, position_ids) -> torch.Tensor:
    hidden = layer(
        hidden, attention_mask=mask, position_embeddings=position_embeddings, position_ids=position_ids,
        is_causal=False,
    )
    return hidden[0] if isinstance(hidden, tuple) else hidden  # older layer conventions return (hidden, ...)
