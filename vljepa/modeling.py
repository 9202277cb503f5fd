"""VL-JEPA (arXiv 2512.10942): predict the embedding of a target text from an image and a query.

``images -> X-encoder -> visual tokens``; ``[visual tokens ; query] -> predictor -> ŷ``;
``target text -> Y-encoder -> y``; the loss compares ŷ and y in a shared embedding space. At inference,
answers, captions or labels are chosen by nearest neighbour between ŷ and Y-encoded candidates.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image

from vljepa.configuration import VLJEPAConfig
from vljepa.encoders.predictor import Predictor, fresh_predictor, predictor_from_pretrained_lm
from vljepa.encoders.x_encoder import VisualInput, XEncoder
from vljepa.encoders.y_encoder import YEncoder
from vljepa.inference import TextRanking, evaluating, normalise_candidates, rank, score_candidates
from vljepa.losses import GatherFn, VLJEPALossOutput, text_ids
from vljepa.persistence import recorded_revision, register_auto_class, resolve
from vljepa.shared_space import SharedSpaceModel, build_x_encoder, build_y_encoder, embedding_loss

logger = logging.getLogger(__name__)

DECODER_FOLDER = "decoder"


@dataclass
class VLJEPAOutput:
    """Output of :meth:`VLJEPAModel.forward`.

    Attributes:
        predicted_embeddings: ``[B, E]`` predictor output ŷ (unnormalised).
        target_embeddings: ``[B, E]`` Y-encoder output y, when targets were given.
        loss: scalar training loss, when targets were given.
        loss_terms: the loss's named terms (:class:`~vljepa.losses.VLJEPALossOutput`).
    """

    predicted_embeddings: torch.Tensor
    target_embeddings: torch.Tensor | None = None
    loss: torch.Tensor | None = None
    loss_terms: VLJEPALossOutput | None = None


class VLJEPAModel(SharedSpaceModel):
    """X-encoder + predictor + Y-encoder + loss. Build with :meth:`from_config` or :meth:`from_pretrained`.

    Shapes: images ``N`` -> visual tokens ``[N, V, x_dim]``; queries -> ids ``[N, Q]``; predictions and
    targets ``[N, embedding_dim]``.

    Example::

        >>> model = VLJEPAModel.from_config(VLJEPAConfig())                     # doctest: +SKIP
        >>> model.answer([image], ["what color is the shape?"], ["red", "blue"])
        ['red']
    """

    config_class = VLJEPAConfig

    def __init__(
        self, config: VLJEPAConfig, *, x_encoder: XEncoder, predictor: Predictor, y_encoder: YEncoder
    ) -> None:
        super().__init__()
        self.config = config
        self.x_encoder = x_encoder
        self.predictor = predictor
        self.y_encoder = y_encoder
        self.decoder = None  # an optional YDecoder (attach_decoder), saved in the `decoder/` subfolder
        self.loss_fn = embedding_loss(config, loss_type=config.loss_type)

    # ------------------------------------------------------------------------------------------------
    @classmethod
    def from_config(cls, config: VLJEPAConfig) -> VLJEPAModel:
        """Build the model, loading each pretrained part through the resolver; records revisions and widths."""
        x_encoder = build_x_encoder(config, frozen=config.x_encoder_frozen)
        lm_path = resolve(config.predictor_model_id, config.predictor_revision)
        if config.predictor_type == "pretrained_lm":
            predictor = predictor_from_pretrained_lm(
                lm_path,
                first_layer=config.predictor_first_layer,
                num_layers=config.predictor_num_layers,
                visual_dim=x_encoder.hidden_size,
                embedding_dim=config.embedding_dim,
                visual_projection=config.visual_projection,
                max_query_tokens=config.predictor_max_query_tokens,
                train_query_embeddings=config.train_query_embeddings,
                query_context=config.predictor_query_context,
                context_layers=config.predictor_query_context_layers,
            )
        else:
            predictor = fresh_predictor(
                lm_path,
                num_layers=config.predictor_num_layers,
                hidden_size=config.predictor_hidden_size,
                num_heads=config.predictor_num_heads,
                intermediate_size=config.predictor_intermediate_size,
                visual_dim=x_encoder.hidden_size,
                embedding_dim=config.embedding_dim,
                visual_projection=config.visual_projection,
                max_query_tokens=config.predictor_max_query_tokens,
                query_context=config.predictor_query_context,
                context_layers=config.predictor_query_context_layers or config.predictor_first_layer,
            )
        y_encoder = build_y_encoder(config)
        config.predictor_revision = recorded_revision(lm_path, config.predictor_revision)
        return cls(config, x_encoder=x_encoder, predictor=predictor, y_encoder=y_encoder)

    def frozen_prefixes(self) -> list[str]:
        """State-dict prefixes of pretrained parts that are frozen (rebuilt from their ids, not saved)."""
        prefixes = []
        if self.config.x_encoder_frozen:
            prefixes.append("x_encoder.")
        if self.config.y_encoder_frozen:
            prefixes.append("y_encoder.encoder.")
        if (self.config.predictor_type == "pretrained_lm" and not self.config.train_query_embeddings) or (
            self.config.predictor_query_context == "lm_prefix"  # then the LM's own embeddings, read by the context
        ):
            prefixes.append("predictor.token_embeddings.")
        if self.predictor.query_context is not None:
            prefixes.append("predictor.query_context.")
        return prefixes

    @property
    def device(self) -> torch.device:
        return self.predictor.output_projection.weight.device

    @property
    def num_truncated_queries(self) -> int:
        """Queries cut to ``predictor_max_query_tokens`` since the model was built (evaluation reports count it)."""
        return self.predictor.num_truncated_queries

    # ------------------------------------------------------------------------------------------------
    def forward(
        self,
        *,
        queries: Sequence[str],
        images: Sequence[VisualInput] | None = None,
        pixel_values: torch.Tensor | None = None,
        visual_tokens: torch.Tensor | None = None,
        visual_mask: torch.Tensor | None = None,
        targets: Sequence[str] | None = None,
        gather_fn: GatherFn | None = None,
        rank: int = 0,
    ) -> VLJEPAOutput:
        """Predict target embeddings; with ``targets``, also compute the loss.

        Give one of ``images`` (PIL images or frame sequences), ``pixel_values [B, 3, H, W]`` (preprocessed by
        ``x_encoder.preprocess``) or precomputed ``visual_tokens [B, V, x_dim]`` (e.g. from the feature cache).
        ``queries`` are empty strings for query-free captioning. Equal target texts count as one target in
        the contrastive loss (they are not each other's negatives). ``gather_fn`` and ``rank`` (from the
        trainer, on several processes) make InfoNCE's negatives the global batch (:class:`~vljepa.losses.EmbeddingLoss`).
        """
        visual_tokens, visual_mask = self.visual_inputs(images, pixel_values, visual_tokens, visual_mask)
        query_ids, query_mask = self.predictor.tokenize(queries, device=self.device)
        predicted = self.predictor(visual_tokens, visual_mask, query_ids, query_mask).embedding
        if targets is None:
            return VLJEPAOutput(predicted_embeddings=predicted)
        if len(targets) != predicted.shape[0]:
            raise ValueError(f"{len(targets)} targets for {predicted.shape[0]} predictions")
        target_embeddings = self.y_encoder(targets)
        terms = self.loss_fn(
            predicted, target_embeddings, text_ids(targets, device=self.device), gather_fn=gather_fn, rank=rank
        )
        return VLJEPAOutput(
            predicted_embeddings=predicted, target_embeddings=target_embeddings, loss=terms.loss, loss_terms=terms
        )

    # ------------------------------------------------------------------------------------------------
    # Inference API (batched, no grad). Returned embeddings are L2-normalised, on the CPU.
    def predict(
        self, images: Sequence[VisualInput], queries: Sequence[str] | None = None, *, batch_size: int = 32
    ) -> torch.Tensor:
        """``[N, E]`` predicted target embeddings for images (or videos) and queries (None: empty queries)."""
        queries = [""] * len(images) if queries is None else list(queries)
        if len(queries) != len(images):
            raise ValueError(f"{len(images)} images but {len(queries)} queries")
        return self.embed_in_batches(images, queries, batch_size=batch_size)

    def embed_images(self, images: Sequence[Image.Image], *, batch_size: int = 32) -> torch.Tensor:
        """``[N, E]`` predicted caption embeddings (empty query): VL-JEPA's image embedding."""
        return self.predict(images, None, batch_size=batch_size)

    def answer_scores(
        self,
        images: Sequence[VisualInput],
        questions: Sequence[str],
        candidates: Sequence[str] | Sequence[Sequence[str]],
        *,
        batch_size: int = 32,
    ) -> torch.Tensor:
        """``[N, C]`` cosine similarity of ŷ(image, question) with each candidate answer (ragged: ``-inf``)."""
        lists = normalise_candidates(candidates, len(images))
        predictions = self.predict(images, questions, batch_size=batch_size)
        return score_candidates(predictions, lists, lambda texts: self.embed_texts(texts, batch_size=batch_size))

    def rank_texts(
        self,
        images: Sequence[VisualInput],
        texts: Sequence[str],
        *,
        queries: Sequence[str] | None = None,
        batch_size: int = 32,
    ) -> TextRanking:
        """Rank ``texts`` for each image by similarity to ŷ(image, query) (default: empty query)."""
        return rank(
            self.predict(images, queries, batch_size=batch_size), self.embed_texts(texts, batch_size=batch_size)
        )

    # ------------------------------------------------------------------------------------------------
    # Text on demand: the Y-decoder (vljepa.decoding.decoder) turns predicted embeddings into text.
    def attach_decoder(self, decoder) -> VLJEPAModel:
        """Attach a :class:`vljepa.decoding.decoder.YDecoder` (saved, loaded and pushed with the model from now on)."""
        if decoder.config.embedding_dim != self.config.embedding_dim:
            raise ValueError(
                f"the Y-decoder reads {decoder.config.embedding_dim}-d embeddings but this model predicts "
                f"{self.config.embedding_dim}-d ones; train a decoder for this embedding space (`vljepa train-decoder`)"
            )
        self.decoder = decoder.to(self.device)
        return self

    def decode(
        self, embeddings: torch.Tensor, *, max_new_tokens: int | None = None, num_beams: int = 1, batch_size: int = 64
    ) -> list[str]:
        """``[N, E]`` shared-space embeddings -> ``N`` texts, greedy (``num_beams=1``) or by beam search."""
        if self.decoder is None:
            raise RuntimeError(
                "this VLJEPAModel has no Y-decoder: train one with `vljepa train-decoder` and attach it with "
                "model.attach_decoder(YDecoder.from_pretrained(DIR)) (save_pretrained then keeps it in decoder/)"
            )
        with evaluating(self):
            return self.decoder.decode(embeddings, max_new_tokens=max_new_tokens, num_beams=num_beams,
                                       batch_size=batch_size)

    def generate_captions(self, images: Sequence[VisualInput], *, batch_size: int = 32, **decode_kwargs) -> list[str]:
        """One caption per image: the decoded query-free prediction (the captioning runner calls this)."""
        return self.decode(self.embed_images(images, batch_size=batch_size), batch_size=batch_size, **decode_kwargs)

    def generate_answers(
        self, images: Sequence[VisualInput], questions: Sequence[str], *, batch_size: int = 32, **decode_kwargs
    ) -> list[str]:
        """Open-ended answers: the decoded prediction for each (image, question)."""
        predictions = self.predict(images, list(questions), batch_size=batch_size)
        return self.decode(predictions, batch_size=batch_size, **decode_kwargs)

    # ------------------------------------------------------------------------------------------------
    # Persistence: the decoder lives in its own subfolder with its own config and tokenizer.
    def persistent_state_dict(self, state=None) -> dict[str, torch.Tensor]:
        return {k: v for k, v in super().persistent_state_dict(state).items() if not k.startswith("decoder.")}

    def save_pretrained(self, save_directory, *, state_dict=None):
        directory = super().save_pretrained(save_directory, state_dict=state_dict)
        if self.decoder is not None:
            self.decoder.save_pretrained(directory / DECODER_FOLDER)
        return directory

    def load_extras(self, folder: Path) -> None:
        """A ``decoder/`` subfolder of a saved model, when present, is attached as its Y-decoder."""
        if (folder / DECODER_FOLDER / "config.json").is_file():
            from vljepa.decoding.decoder import YDecoder

            self.attach_decoder(YDecoder.from_pretrained(folder / DECODER_FOLDER))
            self.decoder.eval()


register_auto_class(VLJEPAConfig, VLJEPAModel)  # AutoConfig / AutoModel (see vljepa.persistence)
