"""The VL-JEPA model configuration: what is saved with the weights (``config.json``).

Encoders are referred to by hub id and revision; only parts that training changed are stored in
``model.safetensors``. How a model was trained lives in :mod:`vljepa.training.arguments`, not here.
"""

from __future__ import annotations

from dataclasses import field
from typing import Any, Literal

from transformers import PreTrainedConfig

LossType = Literal["infonce", "cosine", "l2"]
PredictorType = Literal["pretrained_lm", "fresh"]
QueryContext = Literal["embeddings", "lm_prefix", "lm_residual", "lm_residual_normed", "lm_concat"]
VisualProjection = Literal["linear", "mlp"]
TokenSelection = Literal["patch", "all"]

_LOSS_TYPES = ("infonce", "cosine", "l2")
_PREDICTOR_TYPES = ("pretrained_lm", "fresh")
_QUERY_CONTEXTS = ("embeddings", "lm_prefix", "lm_residual", "lm_residual_normed", "lm_concat")
_VISUAL_PROJECTIONS = ("linear", "mlp")
_TOKEN_SELECTIONS = ("patch", "all")


class VLJEPAConfig(PreTrainedConfig):
    r"""Configuration of :class:`vljepa.modeling.VLJEPAModel` (and the dual-encoder baseline's encoders).

    The model has three swappable parts, each named by a hub id (or a local folder) and a revision:

    * X-encoder ``x_encoder_id``: any vision backbone loadable with ``AutoModel`` (CLIP/SigLIP vision towers,
      DINOv2, V-JEPA 2, ``TimmWrapperModel`` CNNs); frozen by default. Its visual tokens have shape
      ``[batch, tokens, x_dim]``.
    * Predictor: either the layers ``[predictor_first_layer, predictor_first_layer + predictor_num_layers)``
      of a causal LM ``predictor_model_id`` run bidirectionally (``predictor_type="pretrained_lm"``), or a
      fresh Llama-style transformer (``predictor_type="fresh"``) that borrows only the tokenizer of
      ``predictor_model_id``. With ``predictor_query_context="lm_prefix"`` the LM's layers below the predictor
      read the query first (causal, frozen, cached), so a pretrained language model understands it.
    * Y-encoder ``y_encoder_id``: a sentence-transformers model, followed by a linear projection into the
      shared ``embedding_dim`` space.

    Example::

        >>> config = VLJEPAConfig(predictor_num_layers=2, embedding_dim=256)
        >>> config.loss_type
        'infonce'
    """

    model_type = "vljepa"

    # --- X-encoder --------------------------------------------------------------------------------------
    x_encoder_id: str = field(
        default="timm/tf_efficientnet_lite0.in1k",
        metadata={"help": "Hub id or local folder of the vision backbone (loaded with AutoModel)."},
    )
    x_encoder_revision: str | None = field(
        default=None, metadata={"help": "Revision (commit, tag or bundled revision) of the X-encoder."}
    )
    x_encoder_frozen: bool = field(
        default=True, metadata={"help": "Freeze the X-encoder (paper default). A trained one is saved."}
    )
    x_encoder_processor_overrides: dict[str, Any] = field(
        default_factory=dict,
        metadata={
            "help": "Deep-merged into the X-encoder's image-processor config, e.g. "
            "{'pretrained_cfg': {'input_size': [3, 64, 64], 'crop_pct': 1.0}} for a timm backbone or "
            "{'size': {'height': 384, 'width': 384}} for SigLIP."
        },
    )
    x_encoder_token_selection: TokenSelection = field(
        default="patch",
        metadata={"help": "'patch': keep only the spatial patch tokens (drop CLS/register tokens); 'all'."},
    )
    x_encoder_pooled_grid_size: int | None = field(
        default=None,
        metadata={"help": "Average-pool the spatial token grid to this many tokens per side (None: keep)."},
    )

    x_encoder_feature_layer: int | None = field(
        default=None,
        metadata={"help": "Use hidden_states[i] of the backbone (negative: from the end; for a timm CNN, its "
                  "stages) instead of last_hidden_state. None: the last hidden state."},
    )

    # --- Predictor --------------------------------------------------------------------------------------
    predictor_type: PredictorType = field(
        default="pretrained_lm", metadata={"help": "'pretrained_lm' (layers of a causal LM) or 'fresh'."}
    )
    predictor_model_id: str = field(
        default="HuggingFaceTB/SmolLM2-135M-Instruct",
        metadata={"help": "Causal LM whose layers, embeddings and tokenizer form the predictor "
                  "(for 'fresh': only its tokenizer is used)."},
    )
    predictor_revision: str | None = field(default=None, metadata={"help": "Revision of the predictor LM."})
    predictor_num_layers: int = field(default=2, metadata={"help": "Number of transformer layers."})
    predictor_first_layer: int | None = field(
        default=None,
        metadata={"help": "Index of the first LM layer to keep (paper: 8 of Llama-3.2-1B's 16); "
                  "None keeps the last predictor_num_layers layers."},
    )
    predictor_hidden_size: int = field(default=256, metadata={"help": "Width of a fresh predictor."})
    predictor_num_heads: int = field(default=4, metadata={"help": "Attention heads of a fresh predictor."})
    predictor_intermediate_size: int = field(default=1024, metadata={"help": "MLP width of a fresh predictor."})
    predictor_max_query_tokens: int = field(
        default=64, metadata={"help": "Queries are truncated to this many tokens."}
    )
    predictor_query_context: QueryContext = field(
        default="embeddings",
        metadata={"help": "How the query enters the predictor: 'embeddings' (the LM's raw token embeddings; v0.1 "
                  "models); 'lm_prefix' (the states of the LM's first predictor_query_context_layers layers, run "
                  "over the query alone, causal and frozen as pretrained, cached per distinct query, through a "
                  "LayerNorm + linear projection); 'lm_residual' (raw token embeddings plus that projection, "
                  "zero-initialised, so training starts from the 'embeddings' model); 'lm_residual_normed' "
                  "(lm_residual with each query token rescaled to the token embeddings' RMS, so the context "
                  "cannot grow large enough to drown what the predictor layers compute from the image); "
                  "'lm_concat' (the query twice, as separate tokens: its raw token embeddings, then the projected "
                  "LM states, so neither can drown the other)."},
    )
    predictor_query_context_layers: int | None = field(
        default=None,
        metadata={"help": "How many of the LM's layers read the query for the 'lm_*' query contexts (None: "
                  "predictor_first_layer, i.e. every layer below a pretrained predictor)."},
    )
    train_query_embeddings: bool = field(
        default=False,
        metadata={"help": "Train the LM token embeddings used for the query (always trained when fresh)."},
    )
    visual_projection: VisualProjection = field(
        default="linear",
        metadata={"help": "How visual tokens enter the predictor: 'linear' (LayerNorm + Linear) or 'mlp'."},
    )

    # --- Y-encoder --------------------------------------------------------------------------------------
    y_encoder_id: str = field(
        default="sentence-transformers/all-MiniLM-L6-v2",
        metadata={"help": "Hub id or local folder of the sentence-transformers text encoder."},
    )
    y_encoder_revision: str | None = field(default=None, metadata={"help": "Revision of the Y-encoder."})
    y_encoder_frozen: bool = field(
        default=False,
        metadata={"help": "Freeze the Y-encoder; otherwise it trains (at a learning-rate multiplier) and is saved."},
    )

    # --- Shared space and loss --------------------------------------------------------------------------
    embedding_dim: int = field(default=384, metadata={"help": "Dimension of the shared embedding space."})
    loss_type: LossType = field(default="infonce", metadata={"help": "'infonce' (bidirectional), 'cosine' or 'l2'."})
    initial_temperature: float = field(default=0.07, metadata={"help": "Initial InfoNCE temperature."})
    learnable_temperature: bool = field(default=True, metadata={"help": "Learn the InfoNCE temperature."})
    max_logit_scale: float = field(default=100.0, metadata={"help": "Upper clamp of 1/temperature."})

    # --- Filled in when the model is built (shapes of the encoders, for checks on reload) ---------------
    x_encoder_dim: int | None = field(default=None, metadata={"help": "Width of visual tokens (set on build)."})
    y_encoder_dim: int | None = field(default=None, metadata={"help": "Y-encoder output width (set on build)."})

    def __post_init__(self, **kwargs):
        self._check_choice("loss_type", self.loss_type, _LOSS_TYPES)
        self._check_choice("predictor_type", self.predictor_type, _PREDICTOR_TYPES)
        self._check_choice("visual_projection", self.visual_projection, _VISUAL_PROJECTIONS)
        self._check_choice("predictor_query_context", self.predictor_query_context, _QUERY_CONTEXTS)
        uses_lm = self.predictor_query_context != "embeddings"
        if uses_lm and self.predictor_type == "fresh" and not (
            self.predictor_query_context_layers or self.predictor_first_layer
        ):
            raise ValueError(f"predictor_query_context {self.predictor_query_context!r} with a fresh predictor reads "
                             "the query through the first predictor_query_context_layers layers of "
                             "predictor_model_id: set predictor_query_context_layers >= 1")
        if self.predictor_query_context_layers is not None and self.predictor_query_context_layers < 1:
            raise ValueError(f"predictor_query_context_layers must be >= 1 or None, got "
                             f"{self.predictor_query_context_layers}")
        if uses_lm and self.train_query_embeddings:
            raise ValueError("train_query_embeddings must be false with an LM query context: the "
                             "LM layers that read the query are frozen and their states are cached")
        self._check_choice("x_encoder_token_selection", self.x_encoder_token_selection, _TOKEN_SELECTIONS)
        if self.predictor_num_layers < 1:
            raise ValueError(f"predictor_num_layers must be >= 1, got {self.predictor_num_layers}")
        if self.predictor_first_layer is not None and self.predictor_first_layer < 0:
            raise ValueError(f"predictor_first_layer must be >= 0 or None, got {self.predictor_first_layer}")
        if self.predictor_type == "fresh" and self.predictor_hidden_size % self.predictor_num_heads:
            raise ValueError(
                f"predictor_hidden_size ({self.predictor_hidden_size}) must be divisible by "
                f"predictor_num_heads ({self.predictor_num_heads})"
            )
        if self.embedding_dim < 1:
            raise ValueError(f"embedding_dim must be >= 1, got {self.embedding_dim}")
        if not 0 < self.initial_temperature < 10:
            raise ValueError(f"initial_temperature must be in (0, 10), got {self.initial_temperature}")
        if self.max_logit_scale <= 1.0 / 10:
            raise ValueError(f"max_logit_scale must be > 0.1, got {self.max_logit_scale}")
        if self.x_encoder_pooled_grid_size is not None and self.x_encoder_pooled_grid_size < 1:
            raise ValueError(f"x_encoder_pooled_grid_size must be >= 1 or None, got {self.x_encoder_pooled_grid_size}")
        if not isinstance(self.x_encoder_processor_overrides, dict):
            raise TypeError(
                "x_encoder_processor_overrides must be a mapping, got "
                f"{type(self.x_encoder_processor_overrides).__name__}"
            )
        if self.predictor_max_query_tokens < 1:
            raise ValueError(f"predictor_max_query_tokens must be >= 1, got {self.predictor_max_query_tokens}")
        super().__post_init__(**kwargs)

    @staticmethod
    def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
        if value not in choices:
            raise ValueError(f"{name} must be one of {', '.join(choices)}; got {value!r}")
