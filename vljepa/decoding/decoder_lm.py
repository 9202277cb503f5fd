"""The language model inside the Y-decoder: a pretrained causal LM (optionally cut to its first layers,
optionally with LoRA) or a fresh small Llama with a byte-level BPE tokenizer trained on the captions.

Only :mod:`vljepa.decoding.decoder` uses these helpers; they turn a :class:`~vljepa.decoding.decoder.YDecoderConfig` into
``(language_model, tokenizer)``.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Iterator
from pathlib import Path

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    PreTrainedTokenizerFast,
)
from transformers.utils import logging as hf_logging

from vljepa.persistence import recorded_revision, resolve

logger = logging.getLogger(__name__)

SCRATCH_EOS = "<eos>"
SCRATCH_PAD = "<pad>"


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Silence the load report listing the (intentionally) dropped layers of a truncated LM."""
    previous = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(previous)


def load_pretrained_lm(
    model_id: str, revision: str | None, *, num_layers: int | None
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase, str | None]:
    """Load a causal LM keeping only its first ``num_layers`` layers (None: all).

    Returns the model, its tokenizer and the revision to record in a saved config.
    """
    folder = resolve(model_id, revision)
    overrides = {}
    if num_layers is not None:
        full_depth = _config_depth(folder)
        if num_layers > full_depth:
            raise ValueError(
                f"language_model_num_layers={num_layers} but {model_id} has only {full_depth} layers"
            )
        overrides["num_hidden_layers"] = num_layers
    with _quiet_transformers():
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, **overrides)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    if tokenizer.eos_token_id is None:
        raise ValueError(f"the tokenizer of {model_id} has no eos token; the Y-decoder needs one to stop")
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer, recorded_revision(folder, revision)


def _config_depth(folder: Path) -> int:
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(folder)
    depth = getattr(config, "num_hidden_layers", None)
    if depth is None:
        raise ValueError(f"{folder}: the config has no num_hidden_layers; cannot cut the LM to fewer layers")
    return int(depth)


def train_caption_tokenizer(captions: Iterable[str], *, vocab_size: int) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer trained on ``captions`` (any text stays encodable through bytes)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    captions = [text for text in captions if text.strip()]
    if not captions:
        raise ValueError("cannot train a caption tokenizer on an empty caption list")
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=[SCRATCH_PAD, SCRATCH_EOS], show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator(captions, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token=SCRATCH_EOS, pad_token=SCRATCH_PAD)


def build_scratch_lm(
    tokenizer: PreTrainedTokenizerBase,
    *,
    hidden_size: int,
    num_layers: int,
    num_heads: int,
    intermediate_size: int,
    max_positions: int,
) -> LlamaForCausalLM:
    """A randomly initialised small Llama sized to ``tokenizer``'s vocabulary."""
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=hidden_size, intermediate_size=intermediate_size,
        num_hidden_layers=num_layers, num_attention_heads=num_heads, num_key_value_heads=num_heads,
        max_position_embeddings=max_positions, bos_token_id=None, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=True,
    )
    return LlamaForCausalLM(config)
