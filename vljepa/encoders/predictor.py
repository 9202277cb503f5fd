"""The VL-JEPA predictor: a bidirectional transformer from (visual tokens, query) to a target embedding.

Input sequence: ``[visual tokens projected to the predictor width ; query token embeddings]``. Every
position attends to every non-pad position (the causal mask of a pretrained LM is switched off by
passing an explicit 4-D mask to its decoder layers). Output: the mean of the final hidden states over
non-pad positions, then a linear projection into the shared embedding space (paper, Sec. 3).

Two ways to build it (:func:`build_predictor`):

* ``pretrained_lm``: the decoder layers ``[first, first + n)`` of a Hugging Face causal LM (paper: layers
  8-16 of Llama-3.2-1B), its rotary position module, final norm, token embeddings and tokenizer;
* ``fresh``: a randomly initialised Llama-style stack of the configured width, using only the tokenizer
  of the named LM.

How the query enters the stack (``query_context``):

* ``"embeddings"``: the LM's raw token embeddings (no language model reads the query before the trainable
  layers; the v0.1 behaviour);
* ``"lm_prefix"``: the states of the LM's own first layers, run over the query *alone*, causal and frozen,
  exactly as the LM was trained (:class:`~vljepa.encoders.query_context.QueryContext`), through a LayerNorm +
  linear projection (contextual states carry a few huge attention-sink activations). Frozen and
  deterministic, so the states are cached per distinct query and cost nothing after the first time;
* ``"lm_residual"``: raw token embeddings *plus* that projection, zero-initialised, so training starts from
  the ``"embeddings"`` predictor and learns how much of the LM's reading of the question to use. On easy-VQA
  ``"lm_prefix"`` learned to answer yes/no questions from the question alone (the answer prior) and never
  from the image within our budgets, while ``"lm_residual"`` did; BENCHMARKS.md has the measurements.
* ``"lm_residual_normed"``: ``"lm_residual"`` with each query token (embedding + context) rescaled to the
  RMS of the token embedding matrix. Unscaled, the trained projection grew to 5-15x the embeddings' scale,
  the residual stream carried mostly the image-independent reading of the question, and yes/no answers
  followed the question's wording instead of the image (BENCHMARKS.md, issue 14).
* ``"lm_concat"``: the query twice, as separate tokens: its raw token embeddings (what the ``"embeddings"``
  predictor learns the image-question interaction from), then the projected LM states. The sequence is
  ``[visual ; embeddings ; context]``, so a large context cannot drown the raw word identities.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaModel, PreTrainedTokenizerBase

from vljepa.configuration import _QUERY_CONTEXTS as QUERY_CONTEXTS
from vljepa.encoders.query_context import QueryContext, attention_mask_format, call_layer

logger = logging.getLogger(__name__)


@dataclass
class PredictorOutput:
    """What :class:`Predictor` returns.

    Attributes:
        embedding: ``[B, embedding_dim]`` predicted target embedding (not normalised).
        hidden_states: ``[B, V + Q, hidden]`` final (normed) hidden states.
        attention_mask: ``[B, V + Q]`` True on real (non-pad) positions.
    """

    embedding: torch.Tensor
    hidden_states: torch.Tensor
    attention_mask: torch.Tensor


class Predictor(nn.Module):
    """Bidirectional transformer mapping visual tokens ``[B, V, x_dim]`` and query ids ``[B, Q]`` to ``[B, E]``.

    Args:
        layers: decoder layers called as ``layer(hidden, attention_mask=..., position_embeddings=...,
            position_ids=...)`` (the Hugging Face Llama/Qwen/Mistral/SmolLM convention).
        rotary_embedding: the LM's rotary module, ``rotary(hidden, position_ids) -> (cos, sin)``.
        final_norm: the LM's final norm.
        token_embeddings: the LM's input embeddings ``[vocab, hidden]``.
        tokenizer: the LM's tokenizer, used for queries.
        attention_implementation: ``"sdpa"`` or ``"eager"`` (selects the mask format).
        visual_dim / hidden_size / embedding_dim: widths of visual tokens, the stack, the shared space.
        visual_projection: ``"linear"`` (LayerNorm + Linear) or ``"mlp"`` (LayerNorm + Linear-GELU-Linear).
        max_query_tokens: queries are truncated to this many tokens.
        query_context: when given, the query enters as these frozen LM layers' states (``"lm_prefix"``)
            instead of raw token embeddings.

    Example::

        >>> predictor = build_predictor(config, visual_dim=1280, lm_path=folder)   # doctest: +SKIP
        >>> ids, mask = predictor.tokenize(["what color is the shape?"])
        >>> predictor(visual_tokens, visual_mask, ids, mask).embedding.shape      # [1, E]
    """

    def __init__(
        self,
        *,
        layers: nn.ModuleList,
        rotary_embedding: nn.Module,
        final_norm: nn.Module,
        token_embeddings: nn.Embedding,
        tokenizer: PreTrainedTokenizerBase,
        attention_implementation: str,
        visual_dim: int,
        hidden_size: int,
        embedding_dim: int,
        visual_projection: str = "linear",
        max_query_tokens: int = 64,
        query_context: QueryContext | None = None,
        query_residual: bool = False,
        query_rescale: bool = False,
        query_concat: bool = False,
    ) -> None:
        super().__init__()
        if attention_implementation not in ("sdpa", "eager"):
            raise ValueError(
                f"the predictor runs its layers with an explicit bidirectional mask, which needs 'sdpa' or "
                f"'eager' attention; got {attention_implementation!r}"
            )
        self.layers = layers
        self.rotary_embedding = rotary_embedding
        self.final_norm = final_norm
        self.token_embeddings = token_embeddings
        self.query_context = query_context
        # Contextual LM states carry a few huge "attention sink" activations; a LayerNorm and a trained linear map
        # put them on the scale of the visual tokens (and into a fresh predictor's width).
        self.query_projection = None
        self.query_residual = query_residual
        self.query_rescale = query_rescale
        self._embedding_rms: torch.Tensor | None = None  # of the frozen token embeddings; computed once
        if query_rescale and not (query_context is not None and query_residual):
            raise ValueError("query_rescale rescales embedding + context: it needs a residual query context")
        if query_concat and (query_context is None or query_residual):
            raise ValueError("query_concat appends the context tokens to the embeddings: it needs a query context "
                             "and no residual")
        self.query_concat = query_concat
        if query_context is not None:
            width = query_context.token_embeddings.embedding_dim
            self.query_projection = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, hidden_size))
            if query_residual:  # start as the embeddings-only predictor; training decides how much context to add
                nn.init.zeros_(self.query_projection[1].weight)
                nn.init.zeros_(self.query_projection[1].bias)
        self.tokenizer = tokenizer
        self.attention_implementation = attention_implementation
        self.max_query_tokens = max_query_tokens
        self.num_truncated_queries = 0  # queries cut to max_query_tokens so far (reported by evaluations)
        self.pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0  # always masked
        if visual_projection == "linear":
            self.visual_projection = nn.Sequential(nn.LayerNorm(visual_dim), nn.Linear(visual_dim, hidden_size))
        elif visual_projection == "mlp":
            self.visual_projection = nn.Sequential(
                nn.LayerNorm(visual_dim),
                nn.Linear(visual_dim, hidden_size),
                nn.GELU(),
                nn.Linear(hidden_size, hidden_size),
            )
        else:
            raise ValueError(f"visual_projection must be 'linear' or 'mlp', got {visual_projection!r}")
        self.output_projection = nn.Linear(hidden_size, embedding_dim)

    # ------------------------------------------------------------------------------------------------
    def tokenize(self, queries: Sequence[str], device: torch.device | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Right-padded query ids ``[B, Q]`` and mask ``[B, Q]`` (``Q`` may be 0 when all queries are empty)."""
        encoded = self.tokenizer(list(queries), add_special_tokens=False)["input_ids"]
        too_long = [row for row, ids in enumerate(encoded) if len(ids) > self.max_query_tokens]
        if too_long:
            self.num_truncated_queries += len(too_long)
            logger.warning(
                "%d of %d queries are longer than predictor_max_query_tokens=%d tokens and were truncated "
                "(e.g. %r); %d truncated so far", len(too_long), len(encoded), self.max_query_tokens,
                str(queries[too_long[0]])[:80], self.num_truncated_queries,
            )
            encoded = [ids[: self.max_query_tokens] for ids in encoded]
        longest = max((len(ids) for ids in encoded), default=0)
        ids = torch.full((len(encoded), longest), self.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(encoded), longest), dtype=torch.bool)
        for row, token_ids in enumerate(encoded):
            ids[row, : len(token_ids)] = torch.tensor(token_ids, dtype=torch.long)
            mask[row, : len(token_ids)] = True
        device = device or self.output_projection.weight.device
        return ids.to(device), mask.to(device)

    def prefill_query_context(self, queries: Sequence[str]) -> int:
        """Compute the query context's states of every distinct query now (batched; see
        :meth:`QueryContext.prefill`); return how many were new (0 without a query context)."""
        if self.query_context is None:
            return 0
        encoded = self.tokenizer(sorted(set(queries)), add_special_tokens=False)["input_ids"]
        return self.query_context.prefill(tuple(ids[: self.max_query_tokens]) for ids in encoded)

    def _attention_mask(self, key_mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """``[B, 1, L, L]`` bidirectional mask: every position sees every real key, none sees pads."""
        length = key_mask.shape[1]
        allowed = key_mask[:, None, None, :].expand(-1, 1, length, length)
        return attention_mask_format(allowed, self.attention_implementation, dtype)

    def _rescale_to_embeddings(self, query: torch.Tensor) -> torch.Tensor:
        """Each ``[..., hidden]`` token rescaled to the token embedding matrix's RMS (``lm_residual_normed``)."""
        if self._embedding_rms is None or self._embedding_rms.device != query.device:
            with torch.no_grad():
                self._embedding_rms = self.token_embeddings.weight.float().pow(2).mean().sqrt().to(query.device)
        rms = query.float().pow(2).mean(dim=-1, keepdim=True).add(1e-12).sqrt()
        return (query * (self._embedding_rms / rms)).to(query.dtype)

    def forward(
        self,
        visual_tokens: torch.Tensor,
        visual_mask: torch.Tensor,
        query_ids: torch.Tensor,
        query_mask: torch.Tensor,
    ) -> PredictorOutput:
        """Predict ``[B, E]`` from visual tokens ``[B, V, x_dim]`` (mask ``[B, V]``) and query ids ``[B, Q]``."""
        if visual_tokens.shape[0] != query_ids.shape[0]:
            raise ValueError(
                f"batch mismatch: {visual_tokens.shape[0]} visual samples vs {query_ids.shape[0]} queries"
            )
        projected = self.visual_projection(visual_tokens.to(self.output_projection.weight.dtype))
        query = None
        if self.query_context is None or self.query_residual or self.query_concat:
            query = self.token_embeddings(query_ids).to(projected.dtype)
        query_masks = [query_mask.bool()]
        if self.query_context is not None:
            context = self.query_projection(self.query_context(query_ids, query_mask).to(projected.dtype))
            if self.query_concat:
                query = torch.cat([query, context], dim=1)
                query_masks.append(query_mask.bool())
            else:
                query = context if query is None else query + context
        if self.query_rescale:
            query = self._rescale_to_embeddings(query)
        hidden = torch.cat([projected, query], dim=1)
        key_mask = torch.cat([visual_mask.bool(), *query_masks], dim=1)
        position_ids = torch.arange(hidden.shape[1], device=hidden.device).unsqueeze(0).expand(hidden.shape[0], -1)
        position_embeddings = self.rotary_embedding(hidden, position_ids)
        mask = self._attention_mask(key_mask, hidden.dtype)
        for layer in self.layers:
            hidden = call_layer(layer, hidden, mask, position_embeddings, position_ids)
        hidden = self.final_norm(hidden)
        weights = key_mask.to(hidden.dtype).unsqueeze(-1)
        pooled = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)
        return PredictorOutput(
            embedding=self.output_projection(pooled), hidden_states=hidden, attention_mask=key_mask
        )


# ----------------------------------------------------------------------------------------------------
def _decoder_parts(decoder: nn.Module, source: str) -> tuple[nn.ModuleList, nn.Module, nn.Module]:
    missing = [name for name in ("layers", "rotary_emb", "norm") if not hasattr(decoder, name)]
    if missing:
        raise ValueError(
            f"{source}: {type(decoder).__name__} has no {', '.join(missing)}; the predictor supports "
            "decoder-only LMs with the Llama layout (layers, rotary_emb, norm), e.g. Llama, SmolLM2, Qwen, Mistral"
        )
    return decoder.layers, decoder.rotary_emb, decoder.norm


def predictor_from_pretrained_lm(
    lm_path: str | Path,
    *,
    first_layer: int | None,
    num_layers: int,
    visual_dim: int,
    embedding_dim: int,
    visual_projection: str,
    max_query_tokens: int,
    train_query_embeddings: bool,
    query_context: str = "embeddings",
    context_layers: int | None = None,
) -> Predictor:
    """Keep layers ``[first_layer, first_layer + num_layers)`` (default: the last ones) of a causal LM.

    With ``query_context="lm_prefix"`` the layers below ``first_layer`` are kept too, frozen, as the
    :class:`QueryContext` that reads the query before the predictor layers do.
    """
    lm = AutoModelForCausalLM.from_pretrained(lm_path, dtype=torch.float32)
    decoder = lm.get_decoder()
    layers, rotary, norm = _decoder_parts(decoder, str(lm_path))
    total = len(layers)
    first = total - num_layers if first_layer is None else first_layer
    if first < 0 or first + num_layers > total:
        raise ValueError(
            f"{lm_path}: the LM has {total} layers; cannot take {num_layers} layers starting at {first} "
            "(check predictor_first_layer and predictor_num_layers)"
        )
    kept = nn.ModuleList(layers[first : first + num_layers])
    embeddings = lm.get_input_embeddings()
    embeddings.requires_grad_(train_query_embeddings)
    logger.info("Predictor: layers %d-%d of %d of %s (bidirectional)", first, first + num_layers - 1, total, lm_path)
    attention_implementation = lm.config._attn_implementation or "sdpa"
    context = _query_context(lm, context_layers or first, query_context, str(lm_path))
    return Predictor(
        layers=kept,
        rotary_embedding=rotary,
        final_norm=norm,
        token_embeddings=embeddings,
        tokenizer=AutoTokenizer.from_pretrained(lm_path),
        attention_implementation=attention_implementation,
        visual_dim=visual_dim,
        hidden_size=lm.config.hidden_size,
        embedding_dim=embedding_dim,
        visual_projection=visual_projection,
        max_query_tokens=max_query_tokens,
        query_context=context,
        **_query_layout(query_context),
    )


_LM_QUERY_CONTEXTS = tuple(name for name in QUERY_CONTEXTS if name != "embeddings")


def _query_layout(query_context: str) -> dict[str, bool]:
    """The :class:`Predictor` flags that say how a query context combines with the token embeddings."""
    return {
        "query_residual": query_context in ("lm_residual", "lm_residual_normed"),
        "query_rescale": query_context == "lm_residual_normed",
        "query_concat": query_context == "lm_concat",
    }


def _query_context(lm: nn.Module, depth: int, query_context: str, source: str) -> QueryContext | None:
    """The LM's layers ``[0, depth)`` as a frozen :class:`QueryContext` (the ``"lm_*"`` contexts), or None."""
    if query_context == "embeddings":
        return None
    if query_context not in _LM_QUERY_CONTEXTS:
        raise ValueError(f"query_context must be 'embeddings' or one of {_LM_QUERY_CONTEXTS}, got {query_context!r}")
    layers, rotary, _ = _decoder_parts(lm.get_decoder(), source)
    if not 0 < depth <= len(layers):
        raise ValueError(
            f"{source}: an LM query context runs the LM's first predictor_query_context_layers layers over the query; "
            f"it needs 1 to {len(layers)} layers, got {depth}: set predictor_first_layer > 0 or "
            "predictor_query_context_layers"
        )
    logger.info("Query context: LM layers 0-%d of %s, causal and frozen, cached per distinct query", depth - 1, source)
    return QueryContext(
        layers=nn.ModuleList(layers[:depth]), rotary_embedding=rotary, token_embeddings=lm.get_input_embeddings(),
        attention_implementation=lm.config._attn_implementation or "sdpa",
    )


def fresh_predictor(
    tokenizer_path: str | Path,
    *,
    num_layers: int,
    hidden_size: int,
    num_heads: int,
    intermediate_size: int,
    visual_dim: int,
    embedding_dim: int,
    visual_projection: str,
    max_query_tokens: int,
    query_context: str = "embeddings",
    context_layers: int | None = None,
) -> Predictor:
    """A randomly initialised Llama-style predictor that uses the tokenizer found at ``tokenizer_path``.

    With ``query_context="lm_prefix"`` the LM at ``tokenizer_path`` is loaded too and its first
    ``context_layers`` layers read the query (frozen, cached) before the fresh layers do.
    """
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_path)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_heads,
        max_position_embeddings=4096,
        attn_implementation="sdpa",
    )
    decoder = LlamaModel(config)
    layers, rotary, norm = _decoder_parts(decoder, "fresh predictor")
    context = None
    token_embeddings = decoder.embed_tokens
    if query_context != "embeddings":
        lm = AutoModelForCausalLM.from_pretrained(tokenizer_path, dtype=torch.float32)
        context = _query_context(lm, context_layers or 0, query_context, str(tokenizer_path))
        if query_context == "lm_prefix":  # the fresh stack's own embeddings would never be used
            token_embeddings = lm.get_input_embeddings().requires_grad_(False)  # read only through the context
            decoder.embed_tokens = None
    return Predictor(
        layers=layers,
        rotary_embedding=rotary,
        final_norm=norm,
        token_embeddings=token_embeddings,
        query_context=context,
        **_query_layout(query_context),
        tokenizer=tokenizer,
        attention_implementation="sdpa",
        visual_dim=visual_dim,
        hidden_size=hidden_size,
        embedding_dim=embedding_dim,
        visual_projection=visual_projection,
        max_query_tokens=max_query_tokens,
    )
