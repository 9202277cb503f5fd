"""What VL-JEPA and the dual-encoder baseline share: encoders built from the config, visual inputs, batching.

Both models map images (through the X-encoder) and texts (through the Y-encoder) into one embedding space;
they differ only in how the image side becomes a vector (VL-JEPA's predictor, the baseline's pooled
projection). :class:`SharedSpaceModel` holds the common parts so that each model file keeps only its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from vljepa.encoders.x_encoder import VisualInput, XEncoder
from vljepa.encoders.y_encoder import YEncoder
from vljepa.inference import TextCandidatesMixin, batch_ranges, evaluating
from vljepa.losses import EmbeddingLoss
from vljepa.persistence import PersistenceMixin, recorded_revision, resolve


def check_recorded_dim(config: Any, name: str, actual: int) -> None:
    """Record an encoder width in ``config.<name>``; a different recorded width means another encoder."""
    recorded = getattr(config, name)
    if recorded is not None and recorded != actual:
        raise ValueError(
            f"the config records {name}={recorded} but the loaded encoder has width {actual}: the encoder id or "
            "revision does not match the one this model was trained with"
        )
    setattr(config, name, actual)


def build_x_encoder(config: Any, *, frozen: bool) -> XEncoder:
    """The X-encoder named by ``config.x_encoder_*`` (through the resolver); records its width and revision."""
    path = resolve(config.x_encoder_id, config.x_encoder_revision)
    encoder = XEncoder(
        model_path=path,
        frozen=frozen,
        processor_overrides=config.x_encoder_processor_overrides,
        token_selection=config.x_encoder_token_selection,
        pooled_grid_size=config.x_encoder_pooled_grid_size,
        feature_layer=config.x_encoder_feature_layer,
    )
    check_recorded_dim(config, "x_encoder_dim", encoder.hidden_size)
    config.x_encoder_revision = recorded_revision(path, config.x_encoder_revision)
    return encoder


def build_y_encoder(config: Any) -> YEncoder:
    """The Y-encoder named by ``config.y_encoder_*`` with its projection to ``config.embedding_dim``."""
    path = resolve(config.y_encoder_id, config.y_encoder_revision)
    encoder = YEncoder(model_path=path, embedding_dim=config.embedding_dim, frozen=config.y_encoder_frozen)
    check_recorded_dim(config, "y_encoder_dim", encoder.base_dim)
    config.y_encoder_revision = recorded_revision(path, config.y_encoder_revision)
    return encoder


def embedding_loss(config: Any, *, loss_type: str) -> EmbeddingLoss:
    """The loss with the config's temperature settings (``initial_temperature``, ``learnable_temperature``,
    ``max_logit_scale``)."""
    return EmbeddingLoss(
        loss_type=loss_type,
        initial_temperature=config.initial_temperature,
        learnable_temperature=config.learnable_temperature,
        max_logit_scale=config.max_logit_scale,
    )


class SharedSpaceModel(PersistenceMixin, TextCandidatesMixin, nn.Module):
    """Base of :class:`~vljepa.modeling.VLJEPAModel` and :class:`~vljepa.baseline.DualEncoderModel`.

    Subclasses set ``x_encoder``, ``y_encoder`` and ``config`` and implement ``forward(images=..., queries=...)``
    returning an output with ``predicted_embeddings [B, E]``.
    """

    x_encoder: XEncoder
    y_encoder: YEncoder

    def y_encoder_parameters(self) -> list[nn.Parameter]:
        """Trainable parameters of the sentence encoder (trained at the Y-encoder learning-rate multiplier)."""
        return [p for p in self.y_encoder.encoder.parameters() if p.requires_grad]

    def attach_feature_cache(self, cache) -> None:
        """Read frozen X-encoder features through ``cache`` (a :class:`vljepa.training.feature_cache.FeatureCache`,
        or None to stop); training and evaluation images alike. Needs a frozen X-encoder."""
        if cache is not None and not self.x_encoder.frozen:
            raise ValueError("cache_features needs a frozen X-encoder (x_encoder_frozen: true)")
        self.x_encoder.feature_cache = cache

    @property
    def feature_cache(self):
        """The attached feature cache (:meth:`attach_feature_cache`), or None."""
        return self.x_encoder.feature_cache

    def visual_inputs(
        self,
        images: Sequence[VisualInput] | None,
        pixel_values: torch.Tensor | None,
        visual_tokens: torch.Tensor | None,
        visual_mask: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Visual tokens ``[B, V, x_dim]`` and mask ``[B, V]`` on the model's device from exactly one of
        ``images``, ``pixel_values`` or precomputed ``visual_tokens`` (mask: all ones when not given)."""
        if sum(x is not None for x in (images, pixel_values, visual_tokens)) != 1:
            raise ValueError("give exactly one of images, pixel_values or visual_tokens")
        if images is not None:
            visual_tokens, visual_mask = self.x_encoder.encode(images)
        elif pixel_values is not None:
            visual_tokens = self.x_encoder.tokens_from_pixels(pixel_values)
        assert visual_tokens is not None
        visual_tokens = visual_tokens.to(self.device)
        if visual_mask is None:
            visual_mask = torch.ones(visual_tokens.shape[:2], dtype=torch.bool, device=self.device)
        return visual_tokens, visual_mask.to(self.device)

    def embed_in_batches(
        self, images: Sequence[VisualInput], queries: list[str], *, batch_size: int
    ) -> torch.Tensor:
        """``[N, E]`` L2-normalised ``predicted_embeddings`` of ``forward``, batch by batch, on the CPU."""
        outputs = []
        with evaluating(self):
            for part in batch_ranges(len(images), batch_size):
                out = self(images=list(images[part]), queries=queries[part])
                outputs.append(F.normalize(out.predicted_embeddings.float(), dim=-1).cpu())
        return torch.cat(outputs) if outputs else torch.empty(0, self.config.embedding_dim)
