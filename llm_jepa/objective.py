"""The LLM-JEPA objective on a causal LM: ``gamma * L_LM + lambda * d(Pred(Enc(Text)), Enc(Code))``.

:func:`llm_jepa_loss` runs the model on a batch from :class:`llm_jepa.packing.LLMJepaCollator` and returns an
:class:`LLMJepaOutput` with the named terms. It knows nothing of trainers, Accelerate or files.

* ``separate``: three forward passes (conversation; Text + [PRED]; Code), each with its own 2D mask.
* ``packed``: one forward pass over rows ``[conversation | Text fallback | [PRED]]`` plus Code rows that encode
  the Code views' common prefix once and each view's rest as a segment, with a block mask
  (:func:`llm_jepa.packing.block_attention_mask`) and per-view position ids. Same loss and gradients as
  ``separate`` (tested to 1e-4).
* every mode computes logits only at the positions whose next token is labelled in some row
  (:func:`llm_jepa.loss.lm_loss_positions`), not over the whole conversation.
* ``stop_gradient``: the Code views run in a separate no-grad forward (never stored for backward); in packed
  mode over the same shared-prefix Code rows, as long as :data:`llm_jepa.packing.NO_GRAD_CODE_ROW_TOKENS`.
* ``compute_jepa=False`` (JEPA dropout, or lambda = 0): only the conversation is run, as plain fine-tuning.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import torch

from llm_jepa.arguments import JepaObjectiveConfig
from llm_jepa.loss import causal_lm_loss, jepa_distance, lm_loss_positions
from llm_jepa.packing import BLOCK_CONVERSATION, attention_mask_for_backend, block_attention_mask


@dataclass
class LLMJepaOutput:
    """Named terms of one LLM-JEPA step.

    Attributes:
        loss: scalar total, ``lm_loss_weight * lm_loss + jepa_loss_weight * jepa_loss``.
        lm_loss: scalar next-token loss on the assistant tokens.
        jepa_loss: scalar d(prediction, target), or None when the JEPA term was skipped.
        prediction: ``(B, H)`` Pred(Enc(Text)), or None.
        target: ``(B, H)`` Enc(Code), or None.
    """

    loss: torch.Tensor
    lm_loss: torch.Tensor
    jepa_loss: torch.Tensor | None = None
    prediction: torch.Tensor | None = None
    target: torch.Tensor | None = None


def last_token_states(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Hidden state at each row's last attended position: ``(B, T, H), (B, T) -> (B, H)``."""
    positions = torch.arange(attention_mask.shape[1], device=attention_mask.device)
    last = (attention_mask.to(torch.long) * positions).argmax(dim=-1)
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]


def _last_hidden(model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    out = model(
        input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True, use_cache=False,
        logits_to_keep=1,
    )
    return last_token_states(out.hidden_states[-1], attention_mask)


def _code_target(model: Any, batch: Mapping[str, torch.Tensor], stop_gradient: bool) -> torch.Tensor:
    context = torch.no_grad() if stop_gradient else nullcontext()
    with context:
        target = _last_hidden(model, batch["code_input_ids"], batch["code_attention_mask"])
    return target.detach() if stop_gradient else target


def _require(batch: Mapping[str, Any], keys: tuple[str, ...], mode: str) -> None:
    missing = [k for k in keys if k not in batch]
    if missing:
        raise KeyError(f"jepa_mode={mode!r} batch lacks {missing}; collate with LLMJepaCollator(mode={mode!r})")


def _separate(model: Any, batch: Mapping[str, torch.Tensor], config: JepaObjectiveConfig, compute_jepa: bool):
    _require(batch, ("input_ids", "attention_mask", "labels"), "separate")
    positions = lm_loss_positions(batch["labels"])
    out = model(
        input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False,
        logits_to_keep=positions,
    )
    lm_loss = causal_lm_loss(out.logits, batch["labels"], positions)
    if not compute_jepa:
        return lm_loss, None, None
    _require(batch, ("text_input_ids", "text_attention_mask", "code_input_ids", "code_attention_mask"), "separate")
    prediction = _last_hidden(model, batch["text_input_ids"], batch["text_attention_mask"])
    target = _code_target(model, batch, config.jepa_stop_gradient)
    return lm_loss, prediction, target


def _packed(model: Any, batch: Mapping[str, torch.Tensor], config: JepaObjectiveConfig, compute_jepa: bool):
    _require(batch, ("input_ids", "block_ids", "labels"), "packed")
    labels = batch["labels"]
    conv_width = labels.shape[1]
    positions = lm_loss_positions(labels)  # logits only where the LM loss looks (all inside the conversation)
    if not compute_jepa:  # the example rows' conversation region alone is exactly a plain fine-tuning batch
        examples = batch["pred_index"].shape[0] if "pred_index" in batch else labels.shape[0]
        conv_mask = (batch["block_ids"][:examples, :conv_width] == BLOCK_CONVERSATION).long()
        out = model(
            input_ids=batch["input_ids"][:examples, :conv_width], attention_mask=conv_mask, use_cache=False,
            logits_to_keep=positions,
        )
        return causal_lm_loss(out.logits, labels[:examples], positions), None, None

    _require(batch, ("position_ids", "text_block_id", "text_end_index", "pred_index", "code_row", "code_index"),
             "packed")
    if config.jepa_stop_gradient:
        _require(batch, ("code_input_ids", "code_position_ids", "code_block_ids"), "packed")
    text_block, text_end = batch["text_block_id"], batch["text_end_index"]
    out = _block_forward(model, batch["input_ids"], batch["position_ids"], batch["block_ids"], text_block, text_end,
                         logits_to_keep=positions)
    lm_loss = causal_lm_loss(out.logits, labels, positions)
    hidden = out.hidden_states[-1]
    rows = torch.arange(batch["pred_index"].shape[0], device=hidden.device)
    prediction = hidden[rows, batch["pred_index"]]
    if config.jepa_stop_gradient:  # the same Code rows, in their own forward that stores nothing for backward
        with torch.no_grad():
            hidden = _block_forward(model, batch["code_input_ids"], batch["code_position_ids"],
                                    batch["code_block_ids"], text_block[:0], text_end[:0], logits_to_keep=1
                                    ).hidden_states[-1]
    target = hidden[batch["code_row"], batch["code_index"]]  # each Code segment's last token
    return lm_loss, prediction, target.detach() if config.jepa_stop_gradient else target


def _block_forward(
    model: Any, input_ids: torch.Tensor, position_ids: torch.Tensor, block_ids: torch.Tensor,
    text_block_id: torch.Tensor, text_end_index: torch.Tensor, logits_to_keep: int | torch.Tensor,
) -> Any:
    """One model call over packed rows under their block mask (:func:`llm_jepa.packing.block_attention_mask`)."""
    allowed = block_attention_mask(block_ids, text_block_id, text_end_index)
    inner = model.module if isinstance(model, torch.nn.parallel.DistributedDataParallel) else model
    attn_implementation = inner.config._attn_implementation
    mask = attention_mask_for_backend(allowed, attn_implementation, inner.get_input_embeddings().weight.dtype)
    return model(
        input_ids=input_ids, attention_mask=mask, position_ids=position_ids, output_hidden_states=True,
        use_cache=False, logits_to_keep=logits_to_keep,
    )


def llm_jepa_loss(
    model: Any,
    batch: Mapping[str, torch.Tensor],
    config: JepaObjectiveConfig,
    *,
    compute_jepa: bool = True,
    gather_fn: Any = None,
    rank: int = 0,
) -> LLMJepaOutput:
    """Run ``model`` on a collated batch and combine the terms.

    Args:
        model: a causal LM (plain or peft-wrapped) whose forward takes ``output_hidden_states``,
            ``logits_to_keep`` and (packed mode) a 4D ``attention_mask`` with ``position_ids``.
        batch: output of :class:`llm_jepa.packing.LLMJepaCollator` for ``config.jepa_mode``.
        config: the objective (weights, k, distance, mode, stop-gradient).
        compute_jepa: False skips the JEPA term and its compute (dropout step, or lambda = 0).
        gather_fn, rank: for ``jepa_loss: infonce`` on several processes, gather the global batch's
            embeddings as negatives (every process must make the same ``compute_jepa`` choice).
    """
    compute_jepa = compute_jepa and config.jepa_loss_weight > 0
    step = _packed if config.jepa_mode == "packed" else _separate
    lm_loss, prediction, target = step(model, batch, config, compute_jepa)
    total = config.lm_loss_weight * lm_loss
    jepa_loss = None
    if prediction is not None:
        jepa_loss = jepa_distance(
            prediction, target, config.jepa_loss, temperature=config.jepa_infonce_temperature,
            gather_fn=gather_fn, rank=rank,
        )
        total = total + config.jepa_loss_weight * jepa_loss
    return LLMJepaOutput(loss=total, lm_loss=lm_loss, jepa_loss=jepa_loss, prediction=prediction, target=target)


def jepa_term_scheduled(seed: int, step: int, dropout: float) -> bool:
    """Whether the JEPA term runs on optimiser step ``step``: a draw seeded by (seed, step) alone, so every
    process (and a resumed run) makes the same choice; it runs with probability ``1 - dropout``."""
    if dropout <= 0.0:
        return True
    if dropout >= 1.0:
        return False
    return random.Random(seed * 1_000_003 + step).random() >= dropout
