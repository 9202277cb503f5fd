"""The Y-decoder: turns any embedding of the shared space into text.

An embedding ``[D]`` is L2-normalised and mapped by an MLP to ``k`` soft prefix vectors ``[k, H]`` that
are fed to a causal LM as ``inputs_embeds``; the LM then writes the caption. It is trained on text alone
(caption -> Y-encoder -> embedding -> decoder reconstructs the caption, teacher forcing), optionally
fine-tuned on predicted embeddings (see :mod:`vljepa.decoding.training`).

Saved folder: ``config.json`` (:class:`YDecoderConfig`; a pretrained LM is referred to by id and
revision), ``model.safetensors`` (the projection plus the LM weights that training changed: LoRA
matrices, or all LM weights for a fresh or fully fine-tuned LM) and ``tokenizer/``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import AutoTokenizer, PreTrainedConfig, PreTrainedTokenizerBase

from jepa_core.atomic import atomic_path
from vljepa.decoding.decoder_lm import build_scratch_lm, load_pretrained_lm, train_caption_tokenizer

logger = logging.getLogger(__name__)

LanguageModelInit = Literal["pretrained", "scratch"]
Finetuning = Literal["lora", "full", "frozen"]
WEIGHTS_NAME = "model.safetensors"
TOKENIZER_FOLDER = "tokenizer"


class YDecoderConfig(PreTrainedConfig):
    r"""Configuration of :class:`YDecoder` (saved as ``config.json`` beside the weights).

    Example::

        >>> YDecoderConfig(embedding_dim=384).finetuning          # a fresh small LM trains fully
        'full'
        >>> YDecoderConfig(language_model_init="pretrained", language_model_num_layers=4).finetuning
        'lora'
    """

    model_type = "vljepa_ydecoder"

    embedding_dim: int = field(default=384, metadata={"help": "Dimension D of the embeddings to decode."})
    num_prefix_tokens: int = field(default=4, metadata={"help": "Number k of soft prefix tokens."})
    projection_hidden_dim: int = field(default=512, metadata={"help": "Hidden width of the prefix MLP."})
    language_model_init: LanguageModelInit = field(
        default="scratch",
        metadata={"help": "'pretrained': the causal LM language_model_id; 'scratch': a fresh small Llama with "
                  "a byte-level BPE tokenizer trained on the training captions."},
    )
    language_model_id: str = field(
        default="HuggingFaceTB/SmolLM2-135M-Instruct",
        metadata={"help": "Hub id or folder of the pretrained causal LM (unused when 'scratch')."},
    )
    language_model_revision: str | None = field(
        default=None, metadata={"help": "Revision of the pretrained LM (recorded when the decoder is built)."}
    )
    language_model_num_layers: int | None = field(
        default=None,
        metadata={"help": "Keep only the first N layers of the pretrained LM (None: all); depth of a scratch LM "
                  "(None: 2)."},
    )
    finetuning: Finetuning | None = field(
        default=None,
        metadata={"help": "How the LM trains: 'lora', 'full' or 'frozen' (only the prefix MLP trains). "
                  "None: 'lora' for a pretrained LM, 'full' for a scratch one."},
    )
    lora_rank: int = field(default=16, metadata={"help": "LoRA rank."})
    lora_alpha: float = field(default=32.0, metadata={"help": "LoRA alpha (scale = alpha / rank)."})
    lora_dropout: float = field(default=0.0, metadata={"help": "LoRA dropout."})
    scratch_hidden_size: int = field(default=256, metadata={"help": "Width of a scratch LM."})
    scratch_num_heads: int = field(default=4, metadata={"help": "Attention heads of a scratch LM."})
    scratch_intermediate_size: int = field(default=768, metadata={"help": "MLP width of a scratch LM."})
    scratch_vocab_size: int = field(
        default=2048, metadata={"help": "Target vocabulary of the scratch BPE tokenizer (fewer if the corpus is small)."}
    )
    max_caption_tokens: int = field(default=48, metadata={"help": "Captions are truncated to this many tokens."})

    def __post_init__(self, **kwargs):
        if self.language_model_init not in ("pretrained", "scratch"):
            raise ValueError(f"language_model_init must be 'pretrained' or 'scratch', got {self.language_model_init!r}")
        if self.finetuning is None:
            self.finetuning = "lora" if self.language_model_init == "pretrained" else "full"
        if self.finetuning not in ("lora", "full", "frozen"):
            raise ValueError(f"finetuning must be 'lora', 'full' or 'frozen', got {self.finetuning!r}")
        if self.language_model_init == "scratch" and self.finetuning != "full":
            raise ValueError(f"a scratch LM must train fully (finetuning='full'), got {self.finetuning!r}")
        for name in ("embedding_dim", "num_prefix_tokens", "projection_hidden_dim", "lora_rank",
                     "scratch_hidden_size", "scratch_num_heads", "scratch_intermediate_size", "max_caption_tokens"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.language_model_num_layers is not None and self.language_model_num_layers < 1:
            raise ValueError(f"language_model_num_layers must be >= 1 or None, got {self.language_model_num_layers}")
        if self.scratch_hidden_size % self.scratch_num_heads:
            raise ValueError(
                f"scratch_hidden_size ({self.scratch_hidden_size}) must be divisible by scratch_num_heads "
                f"({self.scratch_num_heads})"
            )
        if not 0.0 <= self.lora_dropout < 1.0:
            raise ValueError(f"lora_dropout must be in [0, 1), got {self.lora_dropout}")
        if self.scratch_vocab_size < 300:
            raise ValueError(f"scratch_vocab_size must be >= 300 (256 bytes + merges), got {self.scratch_vocab_size}")
        super().__post_init__(**kwargs)


@dataclass
class YDecoderOutput:
    """Output of :meth:`YDecoder.forward`: the teacher-forced caption loss and the caption logits."""

    loss: torch.Tensor = field(metadata={"help": "Mean token cross-entropy over caption tokens (scalar)."})
    logits: torch.Tensor = field(metadata={"help": "[N, k + L, vocab] LM logits (prefix positions included)."})


class PrefixProjection(nn.Module):
    """``[N, D]`` embeddings -> ``[N, k, H]`` soft prefix (two-layer MLP, ClipCap-style)."""

    def __init__(self, *, embedding_dim: int, hidden_dim: int, num_tokens: int, lm_width: int) -> None:
        super().__init__()
        self.num_tokens = num_tokens
        self.lm_width = lm_width
        self.mlp = nn.Sequential(
            nn.Linear(embedding_dim, hidden_dim), nn.GELU(), nn.Linear(hidden_dim, num_tokens * lm_width)
        )

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        return self.mlp(embeddings).view(embeddings.shape[0], self.num_tokens, self.lm_width)


class YDecoder(nn.Module):
    """Embeddings ``[N, D]`` -> captions ``list[str]`` (length ``N``) through a prefix-conditioned causal LM.

    Build with :meth:`build` (a scratch LM needs ``captions`` to train its tokenizer), reload with
    :meth:`from_pretrained`.

    Example::

        >>> decoder = YDecoder.build(YDecoderConfig(language_model_init="scratch"), captions=["a red circle"])
        >>> decoder.decode(torch.randn(2, 384), max_new_tokens=5)        # doctest: +SKIP
        ['...', '...']
    """

    def __init__(self, config: YDecoderConfig, language_model: nn.Module, tokenizer: PreTrainedTokenizerBase) -> None:
        super().__init__()
        self.config = config
        self.tokenizer = tokenizer
        width = language_model.get_input_embeddings().embedding_dim
        self.projection = PrefixProjection(
            embedding_dim=config.embedding_dim, hidden_dim=config.projection_hidden_dim,
            num_tokens=config.num_prefix_tokens, lm_width=width,
        )
        self.language_model = self._prepare_finetuning(language_model)

    # ------------------------------------------------------------------------------------------ building
    @classmethod
    def build(cls, config: YDecoderConfig, *, captions: Sequence[str] | None = None) -> YDecoder:
        """A new decoder (random prefix MLP); ``captions`` train a scratch LM's tokenizer."""
        if config.language_model_init == "scratch":
            if not captions:
                raise ValueError("a scratch Y-decoder needs the training captions to build its tokenizer")
            tokenizer = train_caption_tokenizer(captions, vocab_size=config.scratch_vocab_size)
            return cls(config, cls._scratch_lm(config, tokenizer), tokenizer)
        model, tokenizer, revision = load_pretrained_lm(
            config.language_model_id, config.language_model_revision, num_layers=config.language_model_num_layers
        )
        config.language_model_revision = revision
        return cls(config, model, tokenizer)

    @staticmethod
    def _scratch_lm(config: YDecoderConfig, tokenizer: PreTrainedTokenizerBase) -> nn.Module:
        return build_scratch_lm(
            tokenizer, hidden_size=config.scratch_hidden_size, num_layers=config.language_model_num_layers or 2,
            num_heads=config.scratch_num_heads, intermediate_size=config.scratch_intermediate_size,
            max_positions=config.num_prefix_tokens + config.max_caption_tokens + 8,
        )

    def _prepare_finetuning(self, model: nn.Module) -> nn.Module:
        if self.config.finetuning == "full":
            return model
        model.requires_grad_(False)
        if self.config.finetuning == "frozen":
            return model
        from peft import LoraConfig, get_peft_model

        lora = LoraConfig(
            r=self.config.lora_rank, lora_alpha=self.config.lora_alpha, lora_dropout=self.config.lora_dropout,
            target_modules="all-linear",
        )
        return get_peft_model(model, lora)

    # ------------------------------------------------------------------------------------------ running
    @property
    def device(self) -> torch.device:
        return self.projection.mlp[0].weight.device

    def prefix(self, embeddings: torch.Tensor) -> torch.Tensor:
        """``[N, D]`` embeddings -> ``[N, k, H]`` prefix. Inputs are L2-normalised first: predicted and
        Y-encoder embeddings differ in scale, not in direction."""
        if embeddings.ndim != 2 or embeddings.shape[1] != self.config.embedding_dim:
            raise ValueError(
                f"expected embeddings of shape [N, {self.config.embedding_dim}], got {list(embeddings.shape)}"
            )
        embeddings = nn.functional.normalize(embeddings.to(self.device, torch.float32), dim=-1)
        return self.projection(embeddings).to(self.language_model.get_input_embeddings().weight.dtype)

    def tokenize_captions(self, captions: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Caption token ids ``[N, L]`` each ending in EOS (right-padded) and their attention mask."""
        eos = self.tokenizer.eos_token_id
        limit = self.config.max_caption_tokens - 1
        rows = [
            self.tokenizer(text, add_special_tokens=False)["input_ids"][:limit] + [eos] for text in captions
        ]
        length = max(len(row) for row in rows)
        ids = torch.full((len(rows), length), self.tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(rows), length), dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = torch.tensor(row)
            mask[i, : len(row)] = 1
        return ids.to(self.device), mask.to(self.device)

    def forward(self, embeddings: torch.Tensor, captions: Sequence[str]) -> YDecoderOutput:
        """Teacher-forced loss of writing ``captions`` (``N`` strings) from ``embeddings`` ``[N, D]``."""
        if len(captions) != embeddings.shape[0]:
            raise ValueError(f"got {embeddings.shape[0]} embeddings but {len(captions)} captions")
        prefix = self.prefix(embeddings)
        ids, mask = self.tokenize_captions(captions)
        tokens = self.language_model.get_input_embeddings()(ids)
        inputs = torch.cat([prefix, tokens], dim=1)
        prefix_mask = torch.ones(prefix.shape[:2], dtype=mask.dtype, device=mask.device)
        labels = torch.cat([torch.full_like(prefix_mask, -100), ids.masked_fill(mask == 0, -100)], dim=1)
        out = self.language_model(
            inputs_embeds=inputs, attention_mask=torch.cat([prefix_mask, mask], dim=1), labels=labels
        )
        return YDecoderOutput(loss=out.loss, logits=out.logits)

    @torch.no_grad()
    def decode(
        self,
        embeddings: torch.Tensor,
        *,
        max_new_tokens: int | None = None,
        num_beams: int = 1,
        batch_size: int = 64,
        min_new_tokens: int = 0,
    ) -> list[str]:
        """``[N, D]`` embeddings -> ``N`` captions, greedy (``num_beams=1``) or by beam search.

        ``min_new_tokens`` forbids EOS before that many tokens (for fixed-length latency measurements).
        """
        if num_beams < 1:
            raise ValueError(f"num_beams must be >= 1, got {num_beams}")
        max_new_tokens = max_new_tokens or self.config.max_caption_tokens
        was_training = self.training
        self.eval()
        captions: list[str] = []
        try:
            for start in range(0, embeddings.shape[0], batch_size):
                prefix = self.prefix(embeddings[start : start + batch_size])
                mask = torch.ones(prefix.shape[:2], dtype=torch.long, device=prefix.device)
                generated = self.language_model.generate(
                    inputs_embeds=prefix, attention_mask=mask, max_new_tokens=max_new_tokens, num_beams=num_beams,
                    min_new_tokens=min_new_tokens, do_sample=False, eos_token_id=self.tokenizer.eos_token_id,
                    pad_token_id=self.tokenizer.pad_token_id,
                )
                captions += [
                    text.strip() for text in self.tokenizer.batch_decode(generated, skip_special_tokens=True)
                ]
        finally:
            self.train(was_training)
        return captions

    # ------------------------------------------------------------------------------------------ saving
    def _saved_state(self) -> dict[str, torch.Tensor]:
        """The projection and the LM weights that training changes (named_parameters dedups tied weights)."""
        state = {f"projection.{name}": value for name, value in self.projection.state_dict().items()}
        if self.config.finetuning == "full":
            names = {name for name, _ in self.language_model.named_parameters()}
        elif self.config.finetuning == "lora":
            names = {name for name, param in self.language_model.named_parameters() if param.requires_grad}
        else:
            names = set()
        lm_state = self.language_model.state_dict()
        state.update({f"language_model.{name}": lm_state[name] for name in sorted(names)})
        return {name: value.detach().contiguous().cpu() for name, value in state.items()}

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write ``config.json``, ``model.safetensors`` and ``tokenizer/`` into ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.config.save_pretrained(directory)
        with atomic_path(directory / WEIGHTS_NAME) as tmp:
            save_file(self._saved_state(), str(tmp), metadata={"format": "pt"})
        # A subfolder: AutoTokenizer would otherwise read the decoder's config.json as an LM config.
        self.tokenizer.save_pretrained(directory / TOKENIZER_FOLDER)
        return directory

    @classmethod
    def from_pretrained(cls, directory: str | Path, *, revision: str | None = None) -> YDecoder:
        """Reload a decoder saved by :meth:`save_pretrained` from a folder or a Hub id (the pretrained base
        LM, if any, is resolved by its recorded id and revision)."""
        from vljepa.persistence import resolve

        local = Path(directory)
        directory = local if local.is_dir() else resolve(str(directory), revision)
        for name in ("config.json", WEIGHTS_NAME, f"{TOKENIZER_FOLDER}/tokenizer_config.json"):
            if not (directory / name).is_file():
                raise FileNotFoundError(
                    f"{directory} is not a Y-decoder folder: {name} is missing (save one with "
                    "YDecoder.save_pretrained or train one with `vljepa train-decoder`)"
                )
        config = YDecoderConfig.from_pretrained(directory)
        tokenizer = AutoTokenizer.from_pretrained(directory / TOKENIZER_FOLDER)
        if config.language_model_init == "scratch":
            decoder = cls(config, cls._scratch_lm(config, tokenizer), tokenizer)
        else:
            model, _, _ = load_pretrained_lm(
                config.language_model_id, config.language_model_revision, num_layers=config.language_model_num_layers
            )
            decoder = cls(config, model, tokenizer)
        state = load_file(str(directory / WEIGHTS_NAME))
        expected = set(decoder._saved_state())
        missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
        if missing or unexpected:
            raise ValueError(
                f"{directory / WEIGHTS_NAME} does not match its config.json: missing {missing[:5]}, "
                f"unexpected {unexpected[:5]}"
            )
        # In-place copies keep tied input/output embeddings tied (only one of them is saved).
        decoder.load_state_dict(state, strict=False)
        return decoder

    def num_trainable_parameters(self) -> int:
        return sum(param.numel() for param in self.parameters() if param.requires_grad)

