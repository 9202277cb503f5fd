"""Batch layouts for the two cost modes, and the block attention mask of the packed one.

``separate`` (reference, three forward passes) pads three independent batches::

    input_ids / attention_mask / labels            (B, T)   the conversation
    text_input_ids / text_attention_mask           (B, Tt)  Text view + [PRED_1..k]
    code_input_ids / code_attention_mask           (B, Tc)  Code view

``packed`` (one forward pass) lays one row per example out in fixed regions, then adds R Code rows::

    example rows:  [ conversation (C) | Text fallback (F) | [PRED] (k) ]
    Code rows:     [ shared prefix (P) | Code 1 rest | Code 2 rest | ... ]          every row of length L

Each example region is padded to the batch maximum. Block ids say which region a token belongs to (0 =
padding). A conversation token attends causally within the conversation; a [PRED] token to the earlier [PRED]
tokens and to the Text view, which is the conversation's first ``text_prefix_length`` tokens when that is a
token prefix (causality makes those hidden states equal to a standalone Text forward) or else the row's own
Text-fallback block. The Code views of a batch open with the same tokens (the chat template's header; with
SmolLM2 a 21-token default system prompt, since the assistant turn is rendered alone): that common prefix is
encoded once per Code row, and each Code view's remaining tokens form a segment (block id ``BLOCK_CODE + 1 + j``)
that attends causally to itself and to the row's prefix (``BLOCK_CODE``) only. By causality each segment's
hidden states equal those of its standalone Code forward, while the prefix is not recomputed for every example;
segments are packed (first-fit decreasing) into as few rows of length L = max(C + F + k, P + longest rest) as
fit. Position ids restart at 0 for each view, continue after the Text view for [PRED] and after the prefix for a
Code segment, so every view sees exactly the positions of its separate forward. ``code_row`` / ``code_index``
say where each example's Enc(Code) token is. With ``stop_gradient`` the Code rows are returned apart
(``code_input_ids`` / ``code_position_ids`` / ``code_block_ids``, rows up to :data:`NO_GRAD_CODE_ROW_TOKENS`
long) for a no-grad forward of their own, and ``code_row`` indexes them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch

BLOCK_PAD, BLOCK_CONVERSATION, BLOCK_TEXT, BLOCK_PRED, BLOCK_CODE = 0, 1, 2, 3, 4


def _pad(rows: Sequence[Sequence[int]], value: int, width: int | None = None) -> torch.Tensor:
    width = max((len(r) for r in rows), default=0) if width is None else width
    out = torch.full((len(rows), width), value, dtype=torch.long)
    for i, row in enumerate(rows):
        out[i, : len(row)] = torch.as_tensor(list(row), dtype=torch.long)
    return out


def _mask(rows: Sequence[Sequence[int]], width: int | None = None) -> torch.Tensor:
    width = max((len(r) for r in rows), default=0) if width is None else width
    out = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        out[i, : len(row)] = 1
    return out


class LLMJepaCollator:
    """Collate tokenised views (see :mod:`llm_jepa.views`) into a ``separate`` or ``packed`` batch.

    Args:
        pred_token_ids: ids of ``[PRED_1..k]`` (empty for k = 0).
        pad_token_id: id written into padded slots (they are masked out and never labelled).
        mode: ``"separate"`` or ``"packed"``.
        stop_gradient: packed mode only: return the Code rows apart, for a no-grad forward.
    """

    def __init__(
        self,
        *,
        pred_token_ids: Sequence[int],
        pad_token_id: int,
        mode: Literal["separate", "packed"] = "packed",
        stop_gradient: bool = False,
    ) -> None:
        if mode not in ("separate", "packed"):
            raise ValueError(f"mode must be 'separate' or 'packed', got {mode!r}")
        self.pred_token_ids = list(pred_token_ids)
        self.pad_token_id = int(pad_token_id)
        self.mode = mode
        self.stop_gradient = stop_gradient

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        if not features:
            raise ValueError("cannot collate an empty batch")
        missing = [c for c in ("input_ids", "labels", "text_input_ids", "code_input_ids") if c not in features[0]]
        if missing:
            raise ValueError(f"features lack view columns {missing}; tokenise with llm_jepa.views first")
        if self.mode == "separate":
            return self.separate(features)
        return self.packed(features)

    def _code_batch(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        code = [f["code_input_ids"] for f in features]
        return {"code_input_ids": _pad(code, self.pad_token_id), "code_attention_mask": _mask(code)}

    def separate(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        conversations = [f["input_ids"] for f in features]
        texts = [list(f["text_input_ids"]) + self.pred_token_ids for f in features]
        return {
            "input_ids": _pad(conversations, self.pad_token_id),
            "attention_mask": _mask(conversations),
            "labels": _pad([f["labels"] for f in features], -100),
            "text_input_ids": _pad(texts, self.pad_token_id),
            "text_attention_mask": _mask(texts),
            **self._code_batch(features),
        }

    def packed(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        k = len(self.pred_token_ids)
        batch = len(features)
        conv_width = max(len(f["input_ids"]) for f in features)
        fallback = [int(f["text_prefix_length"]) == 0 for f in features]
        text_width = max((len(f["text_input_ids"]) for f, fb in zip(features, fallback) if fb), default=0)
        pred_start = conv_width + text_width
        codes = [list(f["code_input_ids"]) for f in features]
        prefix = common_prefix_length(codes)
        longest = prefix + max(len(code) - prefix for code in codes)
        length = pred_start + k if self.stop_gradient else max(pred_start + k, longest)

        rows = _Rows(batch, length, self.pad_token_id)
        text_end = torch.zeros(batch, dtype=torch.long)
        text_block = torch.zeros(batch, dtype=torch.long)
        pred_index = torch.zeros(batch, dtype=torch.long)
        for row, feature in enumerate(features):
            rows.place(row, 0, feature["input_ids"], BLOCK_CONVERSATION)
            n_text = len(feature["text_input_ids"])
            if fallback[row]:
                text_end[row] = rows.place(row, conv_width, feature["text_input_ids"], BLOCK_TEXT)
                text_block[row] = BLOCK_TEXT
            else:
                text_end[row] = n_text - 1
                text_block[row] = BLOCK_CONVERSATION
            pred_index[row] = text_end[row]
            if k:
                pred_index[row] = rows.place(row, pred_start, self.pred_token_ids, BLOCK_PRED, first_position=n_text)

        if self.stop_gradient:  # the Code rows go to their own no-grad forward: rows as long as is economical
            total = prefix + sum(len(code) - prefix for code in codes)
            code = code_rows(codes, prefix, max(longest, min(total, NO_GRAD_CODE_ROW_TOKENS)), self.pad_token_id)
        else:  # the Code rows join the example rows in the one forward
            code = code_rows(codes, prefix, length, self.pad_token_id)
            rows.extend(code.pop("rows"))
            code["code_row"] += batch
        out = {
            "input_ids": rows.input_ids,
            "position_ids": rows.position_ids,
            "block_ids": rows.block_ids,
            "labels": _pad([f["labels"] for f in features] + [[]] * (rows.input_ids.shape[0] - batch), -100,
                           conv_width),
            "text_end_index": text_end,
            "text_block_id": text_block,
            "pred_index": pred_index,
            "text_fallback": torch.tensor(fallback, dtype=torch.bool),
            "code_row": code["code_row"],
            "code_index": code["code_index"],
        }
        if self.stop_gradient:
            no_grad_rows = code["rows"]
            out.update(code_input_ids=no_grad_rows.input_ids, code_position_ids=no_grad_rows.position_ids,
                       code_block_ids=no_grad_rows.block_ids)
        return out


NO_GRAD_CODE_ROW_TOKENS = 1024
"""Row length for stop-gradient's no-grad Code forward: long enough to hold a typical batch's Code views in one
row after their common prefix (fewest padded positions), short enough to keep the dense mask small."""


class _Rows:
    """``input_ids`` / ``position_ids`` / ``block_ids`` of ``rows`` rows of ``width`` tokens, filled by ``place``."""

    def __init__(self, rows: int, width: int, pad_token_id: int) -> None:
        self.input_ids = torch.full((rows, width), pad_token_id, dtype=torch.long)
        self.position_ids = torch.zeros((rows, width), dtype=torch.long)
        self.block_ids = torch.zeros((rows, width), dtype=torch.long)

    def place(self, row: int, start: int, ids: Sequence[int], block: int, first_position: int = 0) -> int:
        """Write ``ids`` at ``row, start:`` as region ``block``; return the index of the last one."""
        n = len(ids)
        self.input_ids[row, start : start + n] = torch.as_tensor(list(ids), dtype=torch.long)
        self.position_ids[row, start : start + n] = torch.arange(first_position, first_position + n)
        self.block_ids[row, start : start + n] = block
        return start + n - 1

    def extend(self, other: _Rows) -> None:
        """Append ``other``'s rows (of the same width) below these."""
        self.input_ids = torch.cat([self.input_ids, other.input_ids])
        self.position_ids = torch.cat([self.position_ids, other.position_ids])
        self.block_ids = torch.cat([self.block_ids, other.block_ids])


def code_rows(codes: Sequence[Sequence[int]], prefix: int, width: int, pad_token_id: int) -> dict[str, Any]:
    """Code views laid out as rows of ``width``: their first ``prefix`` tokens once per row, each view's rest a segment.

    Returns ``rows`` (a :class:`_Rows`) and ``code_row`` / ``code_index``: where each view's last token sits.
    """
    groups = pack_segments([len(code) - prefix for code in codes], width - prefix)
    rows = _Rows(len(groups), width, pad_token_id)
    code_row = torch.zeros(len(codes), dtype=torch.long)
    code_index = torch.zeros(len(codes), dtype=torch.long)
    for row, members in enumerate(groups):
        start = rows.place(row, 0, codes[members[0]][:prefix], BLOCK_CODE) + 1 if prefix else 0
        for segment, example in enumerate(members):
            rest = codes[example][prefix:]
            code_row[example] = row
            code_index[example] = rows.place(row, start, rest, BLOCK_CODE + 1 + segment, first_position=prefix)
            start += len(rest)
    return {"rows": rows, "code_row": code_row, "code_index": code_index}


def common_prefix_length(sequences: Sequence[Sequence[int]]) -> int:
    """Leading tokens all ``sequences`` share, leaving each at least one token of its own (0 for none)."""
    if not sequences:
        return 0
    limit = min(len(sequence) for sequence in sequences) - 1
    first = sequences[0]
    n = 0
    while n < limit and all(sequence[n] == first[n] for sequence in sequences):
        n += 1
    return n


def pack_segments(lengths: Sequence[int], capacity: int) -> list[list[int]]:
    """Indices of ``lengths`` grouped into rows of ``capacity`` tokens, first-fit decreasing (longest first, each
    into the first row with room), which leaves fewer rows than filling them in order."""
    rows: list[list[int]] = []
    free: list[int] = []
    for index in sorted(range(len(lengths)), key=lambda i: (-lengths[i], i)):
        length = lengths[index]
        if length > capacity:
            raise ValueError(f"a segment of {length} tokens does not fit a row of {capacity}")
        row = next((r for r, room in enumerate(free) if room >= length), None)
        if row is None:
            rows.append([])
            free.append(capacity)
            row = len(rows) - 1
        rows[row].append(index)
        free[row] -= length
    return rows


def block_attention_mask(
    block_ids: torch.Tensor, text_block_id: torch.Tensor, text_end_index: torch.Tensor
) -> torch.Tensor:
    """Boolean ``(B, 1, L, L)`` mask, True where query ``i`` may attend key ``j`` (see module docstring).

    Args:
        block_ids: ``(B, L)`` region of each token (``BLOCK_*``).
        text_block_id: ``(B,)`` region holding each row's Text view (conversation or Text fallback).
        text_end_index: ``(B,)`` index of each row's last Text-view token.
    """
    length = block_ids.shape[1]
    device = block_ids.device
    extra_rows = block_ids.shape[0] - text_block_id.shape[0]  # Code rows hold no Text view
    if extra_rows > 0:
        text_block_id = torch.cat([text_block_id, text_block_id.new_full((extra_rows,), BLOCK_PAD)])
        text_end_index = torch.cat([text_end_index, text_end_index.new_zeros(extra_rows)])
    positions = torch.arange(length, device=device)
    causal = positions[None, :, None] >= positions[None, None, :]  # (1, L, L): key j <= query i
    query_block = block_ids[:, :, None]
    key_block = block_ids[:, None, :]
    same_block = (query_block == key_block) & (query_block != BLOCK_PAD) & causal
    pred_to_text = (
        (query_block == BLOCK_PRED)
        & (key_block == text_block_id[:, None, None])
        & (positions[None, None, :] <= text_end_index[:, None, None])
    )
    code_to_prefix = (query_block > BLOCK_CODE) & (key_block == BLOCK_CODE)  # a Code segment reads its row's prefix
    itself = torch.eye(length, dtype=torch.bool, device=device)[None]  # padded slots attend to themselves
    return (same_block | pred_to_text | code_to_prefix | itself)[:, None]


def attention_mask_for_backend(allowed: torch.Tensor, attn_implementation: str, dtype: torch.dtype) -> torch.Tensor:
    """Turn a boolean 4D mask into what the attention backend takes as a custom mask.

    transformers passes a 4D ``attention_mask`` through unchanged (``masking_utils``: "already prepared"), so
    the backend receives it as is: SDPA takes booleans; eager adds the mask to the scores, so it gets 0 / min.
    """
    if attn_implementation == "sdpa":
        return allowed
    if attn_implementation == "eager":
        additive = torch.zeros(allowed.shape, dtype=dtype, device=allowed.device)
        return additive.masked_fill(~allowed, torch.finfo(dtype).min)
    raise ValueError(
        f"jepa_mode=packed needs an attention backend that accepts a custom 4D mask (sdpa or eager); the model "
        f"uses {attn_implementation!r}. Set attn_implementation: sdpa, or use jepa_mode: separate."
    )
