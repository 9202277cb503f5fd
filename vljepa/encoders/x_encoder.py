"""The X-encoder: a (frozen) Hugging Face vision backbone turned into a sequence of visual tokens.

Any backbone loadable with ``AutoModel`` works: CLIP/SigLIP vision towers (or full dual models, whose
``vision_model`` is kept), DINOv2, V-JEPA 2 run frame by frame, and ``TimmWrapperModel`` CNNs. The
backbone's own ``AutoImageProcessor`` preprocesses images. Outputs are shaped by structure, not by name:

* a 4-D ``last_hidden_state`` ``[B, C, h, w]`` (CNN) is a spatial grid, flattened to ``h*w`` tokens;
* a 3-D ``last_hidden_state`` ``[B, N, C]`` (ViT) keeps its last ``(H/p)*(W/p)`` patch tokens when
  ``token_selection="patch"`` (dropping CLS and register tokens), or all ``N`` tokens with ``"all"``.

A video is a sequence of frames: each frame is encoded and the frames' tokens are concatenated in time.
"""

from __future__ import annotations

import contextlib
import copy
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from jepa_core.compat import ensure_torchvision_importable

# transformers' image code (image_utils) and timm import torchvision; a CUDA torchvision wheel beside a CPU torch
# fails at import unless its op schemas are declared first (jepa_core.compat says why). This module is where
# VL-JEPA first needs torchvision, so the workaround runs here and not on `import jepa_core`.
ensure_torchvision_importable()

from transformers import AutoImageProcessor, AutoModel

logger = logging.getLogger(__name__)

VisualInput = Image.Image | Sequence[Image.Image]
"""One sample: an image, or a video given as a sequence of frames."""


def deep_merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``base`` with ``overrides`` merged in, recursing into nested mappings."""
    merged = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def load_image_processor(path: str | Path, overrides: dict[str, Any] | None = None):
    """The backbone's ``AutoImageProcessor``, with ``overrides`` deep-merged into its saved config."""
    processor = AutoImageProcessor.from_pretrained(path)
    if not overrides:
        return processor
    processor_class = type(processor)
    saved, _ = processor_class.get_image_processor_dict(path)
    unknown = [key for key in overrides if key not in saved]
    if unknown:
        raise ValueError(
            f"x_encoder_processor_overrides: key(s) {unknown} are not in the image-processor config of {path} "
            f"(known keys: {sorted(saved)})"
        )
    return processor_class.from_dict(deep_merge(saved, overrides))


class XEncoder(nn.Module):
    """A vision backbone yielding visual tokens ``[B, T, x_dim]`` and a token mask ``[B, T]``.

    Args:
        model_path: local folder of the backbone (resolved by :mod:`jepa_core.resolver`).
        frozen: freeze the backbone (``requires_grad_(False)``, run under ``torch.no_grad()``, kept in
            eval mode so normalisation statistics never move).
        processor_overrides: deep-merged into the image-processor config (e.g. another input size).
        token_selection: ``"patch"`` keeps spatial patch tokens only; ``"all"`` keeps every output token.
        pooled_grid_size: average-pool the spatial token grid to ``g x g`` tokens (``None``: keep it).
        feature_layer: take ``hidden_states[feature_layer]`` (negative counts from the end, as LLaVA's
            ``vision_feature_layer``) instead of ``last_hidden_state``; for a timm CNN these are its stages.
        channels_last: run the backbone in channels-last memory format (faster convolutions).

    Example::

        >>> encoder = XEncoder(model_path=folder)                       # doctest: +SKIP
        >>> tokens, mask = encoder.encode([Image.new("RGB", (64, 64))]) # [1, T, x_dim], [1, T]
    """

    def __init__(
        self,
        *,
        model_path: str | Path,
        frozen: bool = True,
        processor_overrides: dict[str, Any] | None = None,
        token_selection: str = "patch",
        pooled_grid_size: int | None = None,
        feature_layer: int | None = None,
        channels_last: bool = True,
    ) -> None:
        super().__init__()
        backbone = AutoModel.from_pretrained(model_path)
        if hasattr(backbone, "vision_model") and isinstance(backbone.vision_model, nn.Module):
            backbone = backbone.vision_model  # a full dual-encoder checkpoint (CLIP, SigLIP): keep the vision tower
        self.backbone = backbone
        self.processor = load_image_processor(model_path, processor_overrides)
        self.frozen = frozen
        self.token_selection = token_selection
        self.pooled_grid_size = pooled_grid_size
        self.feature_layer = feature_layer
        self.processor_overrides = dict(processor_overrides or {})
        if frozen:
            self.backbone.requires_grad_(False)
            self.backbone.eval()
        # channels-last convolutions are ~2x faster on CPU (oneDNN) and usually on GPU; outputs are unchanged
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.backbone.to(memory_format=self.memory_format)
        probe = self.tokens_from_pixels(self.preprocess([Image.new("RGB", (64, 64))]))
        self.num_tokens_per_frame = probe.shape[1]
        self.hidden_size = probe.shape[2]
        #: Optional feature cache (see :mod:`vljepa.training.feature_cache`), consulted by :meth:`encode`.
        self.feature_cache = None

    # ------------------------------------------------------------------------------------------------
    def train(self, mode: bool = True) -> XEncoder:
        super().train(mode)
        if self.frozen:
            self.backbone.eval()  # batch-norm statistics of a frozen CNN must not move
        return self

    @property
    def device(self) -> torch.device:
        return next(self.backbone.parameters()).device

    def preprocessing_signature(self) -> dict[str, Any]:
        """Everything that determines the features of an image, except the backbone weights."""
        processor_config = self.processor.to_dict()
        return {
            "processor_class": type(self.processor).__name__,
            "processor": {k: v for k, v in processor_config.items() if not k.startswith("_")},
            "token_selection": self.token_selection,
            "pooled_grid_size": self.pooled_grid_size,
            "feature_layer": self.feature_layer,
        }

    def preprocess(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """``[N, 3, H, W]`` pixel values of ``N`` PIL images (converted to RGB first)."""
        rgb = [image if image.mode == "RGB" else image.convert("RGB") for image in images]
        return self.processor(images=rgb, return_tensors="pt")["pixel_values"]

    # ------------------------------------------------------------------------------------------------
    def tokens_from_pixels(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Run the backbone on ``[N, 3, H, W]`` pixels; return visual tokens ``[N, T, x_dim]``."""
        pixel_values = pixel_values.to(self.device, dtype=next(self.backbone.parameters()).dtype).contiguous(
            memory_format=self.memory_format
        )
        with torch.no_grad() if self.frozen else contextlib.nullcontext():
            if self.feature_layer is None:
                hidden = self.backbone(pixel_values=pixel_values).last_hidden_state
            else:
                states = self.backbone(pixel_values=pixel_values, output_hidden_states=True).hidden_states
                if not -len(states) <= self.feature_layer < len(states):
                    raise ValueError(
                        f"x_encoder_feature_layer={self.feature_layer} but {type(self.backbone).__name__} returns "
                        f"{len(states)} hidden states"
                    )
                hidden = states[self.feature_layer]
        return self._select_tokens(hidden, pixel_values.shape[-2:])

    def _select_tokens(self, hidden: torch.Tensor, image_hw: torch.Size) -> torch.Tensor:
        if hidden.dim() == 4:  # [N, C, h, w] spatial grid of a CNN
            grid = hidden
        elif hidden.dim() == 3:
            if self.token_selection == "all":
                if self.pooled_grid_size is not None:
                    raise ValueError("x_encoder_pooled_grid_size needs token_selection='patch' (a spatial grid)")
                return hidden
            patch = getattr(self.backbone.config, "patch_size", None)
            if patch is None:
                raise ValueError(
                    f"{type(self.backbone).__name__} gives [N, T, C] tokens but its config has no patch_size, "
                    "so patch tokens cannot be told apart from CLS/register tokens; set "
                    "x_encoder_token_selection='all'"
                )
            patch = patch if isinstance(patch, int) else patch[0]
            rows, cols = image_hw[0] // patch, image_hw[1] // patch
            if hidden.shape[1] < rows * cols:
                raise ValueError(
                    f"backbone returned {hidden.shape[1]} tokens for a {rows}x{cols} patch grid; "
                    "set x_encoder_token_selection='all'"
                )
            patches = hidden[:, hidden.shape[1] - rows * cols :]
            grid = patches.transpose(1, 2).reshape(hidden.shape[0], hidden.shape[2], rows, cols)
        else:
            raise ValueError(f"unsupported backbone output of shape {tuple(hidden.shape)}")
        if self.pooled_grid_size is not None:
            grid = F.adaptive_avg_pool2d(grid, self.pooled_grid_size)
        return grid.flatten(2).transpose(1, 2)

    # ------------------------------------------------------------------------------------------------
    def encode_frames(self, frames: Sequence[Image.Image], *, batch_size: int = 64) -> torch.Tensor:
        """Visual tokens ``[N, T, x_dim]`` of ``N`` single images, through the feature cache if attached."""
        if self.feature_cache is not None and self.frozen:
            return self.feature_cache.get_or_compute(frames, self, batch_size=batch_size).to(self.device)
        chunks = [
            self.tokens_from_pixels(self.preprocess(frames[start : start + batch_size]))
            for start in range(0, len(frames), batch_size)
        ]
        return torch.cat(chunks)

    def encode(self, samples: Sequence[VisualInput], *, batch_size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode images (or videos as frame sequences).

        Returns ``tokens [B, T, x_dim]`` and ``mask [B, T]`` (True on real tokens). Videos with fewer
        frames than the longest in the batch are right-padded.
        """
        if len(samples) == 0:
            raise ValueError("XEncoder.encode got no images")
        frames: list[Image.Image] = []
        counts: list[int] = []
        for index, sample in enumerate(samples):
            if isinstance(sample, Image.Image):
                frames.append(sample)
                counts.append(1)
            elif isinstance(sample, Sequence) and sample and all(isinstance(f, Image.Image) for f in sample):
                frames.extend(sample)
                counts.append(len(sample))
            else:
                raise TypeError(
                    f"sample {index}: expected a PIL image or a non-empty sequence of PIL frames, "
                    f"got {type(sample).__name__}"
                )
        per_frame = self.encode_frames(frames, batch_size=batch_size)
        return self.stack_frames(per_frame, counts)

    @staticmethod
    def stack_frames(per_frame: torch.Tensor, counts: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Concatenate per-frame tokens ``[F, t, D]`` into samples ``[B, max_frames * t, D]`` plus mask."""
        if all(count == 1 for count in counts):
            mask = torch.ones(per_frame.shape[:2], dtype=torch.bool, device=per_frame.device)
            return per_frame, mask
        tokens_per_frame, dim = per_frame.shape[1], per_frame.shape[2]
        longest = max(counts) * tokens_per_frame
        tokens = per_frame.new_zeros(len(counts), longest, dim)
        mask = torch.zeros(len(counts), longest, dtype=torch.bool, device=per_frame.device)
        start = 0
        for row, count in enumerate(counts):
            length = count * tokens_per_frame
            tokens[row, :length] = per_frame[start : start + count].reshape(length, dim)
            mask[row, :length] = True
            start += count
        return tokens, mask

