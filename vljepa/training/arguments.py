"""Recipe dataclasses for ``vljepa train``: the model to build and how to train it.

A recipe YAML maps one-to-one onto :class:`VLJEPAModelArguments` + :class:`VLJEPATrainingArguments` (parsed with
:func:`jepa_core.config.parse_config`; unknown keys are errors). :meth:`VLJEPAModelArguments.to_config` turns the
model section into the config saved with the weights (:class:`~vljepa.configuration.VLJEPAConfig` or
:class:`~vljepa.baseline.DualEncoderConfig`).

Training runs in up to two stages, as in the paper: a query-free *caption* stage (empty query, target =
a caption) and then a query-conditioned stage (query = question, target = answer).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from jepa_core.config import json_mapping_text

if TYPE_CHECKING:  # only annotated here: `vljepa train --help` stays free of transformers and torch
    from transformers import PreTrainedConfig


def _help(text: str, **kwargs: Any) -> Any:
    return field(metadata={"help": text}, **kwargs)


@dataclass
class VLJEPAModelArguments:
    """The model section of a recipe (see :class:`~vljepa.configuration.VLJEPAConfig` for each field)."""

    model_kind: Literal["vljepa", "dual_encoder"] = _help(
        "'vljepa' (predictor) or 'dual_encoder' (the CLIP/LiT baseline with the same encoders).", default="vljepa"
    )
    x_encoder_id: str = _help("Vision backbone (AutoModel).", default="timm/tf_efficientnet_lite0.in1k")
    x_encoder_revision: str | None = _help("Revision of the X-encoder.", default=None)
    x_encoder_frozen: bool = _help("Freeze the X-encoder (paper default; needed for the feature cache).", default=True)
    x_encoder_processor_overrides: str = _help(
        "JSON (or a YAML mapping) deep-merged into the image-processor config, e.g. "
        '\'{"pretrained_cfg": {"input_size": [3, 64, 64], "crop_pct": 1.0}}\'.',
        default="{}",
    )
    x_encoder_token_selection: Literal["patch", "all"] = _help(
        "'patch': spatial patch tokens only; 'all': every output token.", default="patch"
    )
    x_encoder_pooled_grid_size: int | None = _help("Average-pool the token grid to g x g (None: keep).", default=None)
    x_encoder_feature_layer: int | None = _help(
        "Use the backbone's hidden_states[i] (negative: from the end) instead of its last hidden state.", default=None
    )
    predictor_type: Literal["pretrained_lm", "fresh"] = _help(
        "Predictor from the last layers of a causal LM, or a fresh transformer.", default="pretrained_lm"
    )
    predictor_model_id: str = _help("Causal LM (layers, embeddings, tokenizer).", default="HuggingFaceTB/SmolLM2-135M-Instruct")
    predictor_revision: str | None = _help("Revision of the predictor LM.", default=None)
    predictor_num_layers: int = _help("Predictor transformer layers.", default=2)
    predictor_first_layer: int | None = _help("First LM layer kept (None: the last num_layers).", default=None)
    predictor_hidden_size: int = _help("Width of a fresh predictor.", default=256)
    predictor_num_heads: int = _help("Heads of a fresh predictor.", default=4)
    predictor_intermediate_size: int = _help("MLP width of a fresh predictor.", default=1024)
    predictor_max_query_tokens: int = _help("Query truncation length in tokens.", default=64)
    predictor_query_context: Literal[
        "embeddings", "lm_prefix", "lm_residual", "lm_residual_normed", "lm_concat"
    ] = _help(
        "How the query enters the predictor: 'embeddings' (raw token embeddings), 'lm_prefix' (frozen LM layers read "
        "it first, cached), 'lm_residual' (raw embeddings + a zero-initialised projection of those states) or "
        "'lm_residual_normed' (lm_residual with each query token rescaled to the embeddings' RMS) or 'lm_concat' "
        "(raw embeddings and the projected LM states as separate tokens).",
        default="embeddings",
    )
    predictor_query_context_layers: int | None = _help(
        "LM layers that read the query for the lm_* query contexts (None: predictor_first_layer).", default=None
    )
    train_query_embeddings: bool = _help("Train the LM token embeddings used for queries.", default=False)
    visual_projection: Literal["linear", "mlp"] = _help("Visual tokens -> predictor width.", default="linear")
    y_encoder_id: str = _help("Sentence-transformers target encoder.", default="sentence-transformers/all-MiniLM-L6-v2")
    y_encoder_revision: str | None = _help("Revision of the Y-encoder.", default=None)
    y_encoder_frozen: bool = _help("Freeze the Y-encoder (else it trains at y_encoder_lr_multiplier).", default=False)
    embedding_dim: int = _help("Shared embedding space dimension.", default=384)
    loss_type: Literal["infonce", "cosine", "l2"] = _help("Prediction loss (the dual encoder uses infonce).", default="infonce")
    initial_temperature: float = _help("Initial InfoNCE temperature.", default=0.07)
    learnable_temperature: bool = _help("Learn the InfoNCE temperature.", default=True)
    text_template: str = _help("Dual encoder only: VQA text from a question and an answer.", default="{question} {answer}")

    def __post_init__(self) -> None:
        self.x_encoder_processor_overrides = json_mapping_text(
            self.x_encoder_processor_overrides, "x_encoder_processor_overrides"
        )
        if self.model_kind == "dual_encoder":
            if self.loss_type != "infonce":
                raise ValueError("the dual encoder trains with loss_type='infonce' only")
            if not self.x_encoder_frozen:
                raise ValueError("the dual encoder keeps its X-encoder frozen (x_encoder_frozen must be true)")
        self.to_config()  # validate the combination now, with the config's own checks

    @property
    def processor_overrides(self) -> dict[str, Any]:
        return json.loads(self.x_encoder_processor_overrides)

    def to_config(self) -> PreTrainedConfig:
        """The model config (saved with the weights) these arguments describe."""
        shared: dict[str, Any] = {
            "x_encoder_id": self.x_encoder_id,
            "x_encoder_revision": self.x_encoder_revision,
            "x_encoder_processor_overrides": self.processor_overrides,
            "x_encoder_token_selection": self.x_encoder_token_selection,
            "x_encoder_pooled_grid_size": self.x_encoder_pooled_grid_size,
            "x_encoder_feature_layer": self.x_encoder_feature_layer,
            "y_encoder_id": self.y_encoder_id,
            "y_encoder_revision": self.y_encoder_revision,
            "y_encoder_frozen": self.y_encoder_frozen,
            "embedding_dim": self.embedding_dim,
            "initial_temperature": self.initial_temperature,
            "learnable_temperature": self.learnable_temperature,
        }
        if self.model_kind == "dual_encoder":
            from vljepa.baseline import DualEncoderConfig

            return DualEncoderConfig(text_template=self.text_template, **shared)
        from vljepa.configuration import VLJEPAConfig

        return VLJEPAConfig(
            x_encoder_frozen=self.x_encoder_frozen,
            predictor_type=self.predictor_type,
            predictor_model_id=self.predictor_model_id,
            predictor_revision=self.predictor_revision,
            predictor_num_layers=self.predictor_num_layers,
            predictor_first_layer=self.predictor_first_layer,
            predictor_hidden_size=self.predictor_hidden_size,
            predictor_num_heads=self.predictor_num_heads,
            predictor_intermediate_size=self.predictor_intermediate_size,
            predictor_max_query_tokens=self.predictor_max_query_tokens,
            predictor_query_context=self.predictor_query_context,
            predictor_query_context_layers=self.predictor_query_context_layers,
            train_query_embeddings=self.train_query_embeddings,
            visual_projection=self.visual_projection,
            loss_type=self.loss_type,
            **shared,
        )


@dataclass
class VLJEPATrainingArguments:
    """How to train: data stages, optimisation, feature cache, evaluation, checkpoints."""

    output_dir: str = _help("Run directory (config, logs, checkpoints, metrics.json, model/).", default="runs/vljepa")
    seed: int = _help("Random seed (model init, data order).", default=0)
    resume: bool = field(
        default=False,
        metadata={"help": "Resume from the latest complete checkpoint in output_dir/checkpoints. Also spelled "
                  "--resume_from_checkpoint (the transformers name; a recipe may use either key).",
                  "aliases": ["--resume_from_checkpoint"]},
    )
    init_from: str | None = _help(
        "A saved model (the model/ folder of a finished run, or a Hub id) whose trained tensors start this run: a "
        "curriculum continues an earlier run under another recipe. Same encoders and shapes required; tensors the "
        "recipe adds (e.g. a query-context projection) keep their fresh initialisation. A resumed checkpoint wins.",
        default=None,
    )

    # --- data stages -----------------------------------------------------------------------------------
    caption_dataset: str | None = _help("Captioning dataset for the query-free stage (None: skip).", default=None)
    caption_split: str = _help("Split of the caption dataset.", default="train")
    caption_dataset_kwargs: str = _help(
        "JSON (or a YAML mapping) of keyword arguments for load_vl_dataset, e.g. '{\"root\": \"/data/coco\"}'.",
        default="{}",
    )
    caption_epochs: float = _help("Epochs of the caption stage (fractions allowed).", default=1.0)
    query_dataset: str | None = _help("VQA dataset for the query-conditioned stage (None: skip).", default=None)
    query_split: str = _help("Split of the VQA dataset.", default="train")
    query_dataset_kwargs: str = _help("Keyword arguments for load_vl_dataset of the VQA dataset.", default="{}")
    query_epochs: float = _help("Epochs of the query stage (fractions allowed).", default=1.0)
    max_train_samples: int | None = _help("Use only the first N rows of each training dataset.", default=None)
    on_bad_input: Literal["error", "skip"] = _help(
        "A training image that cannot be decoded (truncated, empty, not an image, over max_image_pixels): 'skip' "
        "drops its examples and lists it in output_dir/bad_inputs.json (and counts it in metrics.json as "
        "skipped_bad_inputs); 'error' stops before training with a message naming the file and row.",
        default="skip",
    )
    max_image_pixels: int = _help(
        "Images with more pixels (width x height, read from the header) are bad inputs (decompression-bomb guard).",
        default=8192 * 8192,
    )

    # --- optimisation -----------------------------------------------------------------------------------
    per_device_train_batch_size: int = _help("Examples per device per step.", default=64)
    gradient_accumulation_steps: int = _help("Micro-batches per optimizer step.", default=1)
    learning_rate: float = _help("Peak learning rate of the trainable predictor/projections.", default=1e-4)
    y_encoder_lr_multiplier: float = _help("Y-encoder learning rate = this x learning_rate (paper: 0.05).", default=0.05)
    weight_decay: float = _help("AdamW weight decay (not applied to biases, norms, temperature).", default=0.01)
    warmup_ratio: float = _help("Fraction of all steps spent warming up the learning rate.", default=0.05)
    lr_scheduler_type: Literal["cosine", "linear", "constant_with_warmup"] = _help(
        "Learning-rate schedule over both stages.", default="cosine"
    )
    max_grad_norm: float = _help("Gradient clipping norm (0: off).", default=1.0)
    on_nonfinite_loss: Literal["stop", "skip"] = _help(
        "A NaN/inf loss on any process: 'stop' the run with an error (the last checkpoint stays as it was), or "
        "'skip' that optimizer step (no parameter or optimizer-state update; counted in metrics.json as "
        "skipped_nonfinite_steps).",
        default="stop",
    )
    mixed_precision: Literal["no", "fp16", "bf16"] | None = _help(
        "Mixed precision. None: the launcher's choice (`accelerate launch --mixed_precision` or the Accelerate "
        "config file's mixed_precision, else 'no'); a value here overrides the launcher. The choice is logged.",
        default=None,
    )
    use_cpu: bool | None = _help(
        "Run on the CPU (None: exactly when no GPU/XPU/MPS is present). Several CPU processes under "
        "`accelerate launch` need this on, which None gives on a CPU-only machine.",
        default=None,
    )
    torch_num_threads: int | None = _help(
        "torch intra-op CPU threads (None: torch's default, one per core). On a shared or busy CPU, 1 avoids "
        "OpenMP spin-waits that made small ops up to ~50x slower in our measurements.",
        default=None,
    )
    dataloader_num_workers: int = _help(
        "Worker processes preparing micro-batches (decoding and preprocessing images when not cached).", default=0
    )

    # --- frozen-feature cache ---------------------------------------------------------------------------
    cache_features: bool = _help("Compute frozen X-encoder features once and cache them on disk.", default=True)
    feature_cache_dir: str | None = _help("Cache root (default: $JEPA_CACHE_DIR/features).", default=None)
    feature_cache_dtype: Literal["float32", "float16", "bfloat16"] = _help("Cached feature dtype.", default="float16")
    feature_batch_size: int = _help("Images per X-encoder forward when filling the cache.", default=64)

    # --- evaluation -------------------------------------------------------------------------------------
    eval_task: Literal["vqa", "retrieval", "none"] = _help("Task of periodic and final evaluation.", default="vqa")
    eval_dataset: str | None = _help("Evaluation dataset name (load_vl_dataset).", default=None)
    eval_split: str = _help("Evaluation split.", default="test")
    eval_dataset_kwargs: str = _help("Keyword arguments for load_vl_dataset of the eval dataset.", default="{}")
    eval_steps: int = _help("Evaluate every N optimizer steps on eval_max_samples rows (0: only at the end).", default=0)
    eval_max_samples: int | None = _help("Rows used by periodic evaluation (the final one uses all).", default=500)
    eval_batch_size: int = _help("Batch size of evaluation.", default=128)
    eval_on_bad_input: Literal["error", "skip"] = _help(
        "An evaluation image that cannot be decoded: 'error' stops naming the row and file; 'skip' leaves the row "
        "out and lists it in eval/metrics.json (skipped_bad_inputs, bad_inputs).",
        default="error",
    )

    # --- logging and checkpoints ------------------------------------------------------------------------
    logging_steps: int = _help("Log losses every N optimizer steps.", default=20)
    report_to: str = _help(
        "Experiment trackers, as in transformers' TrainingArguments: one Accelerate tracker name (tensorboard, "
        "wandb, mlflow, comet_ml, aim, clearml, dvclive, swanlab, trackio), several separated by commas, 'all' "
        "(every installed one) or 'none'. An unknown or uninstalled tracker is an error before training.",
        default="tensorboard",
    )
    save_steps: int = _help("Checkpoint every N optimizer steps (0: at the end of each stage only).", default=0)
    save_total_limit: int = _help("Keep at most this many checkpoints (the newest).", default=1)

    # --- collapse monitoring ----------------------------------------------------------------------------
    monitor_collapse: bool = _help(
        "Log per-dimension std, RankMe and mean cosine of the predicted and target embeddings at every logging "
        "step (collapse/pred/*, collapse/target/*) and warn once when they look collapsed.",
        default=True,
    )
    collapse_buffer_size: int = _help("Most recent embeddings (per stream) the statistics use.", default=512)
    collapse_min_vectors: int = _help("No collapse verdict before this many embeddings were seen.", default=256)
    collapse_min_rank_fraction: float = _help("Collapsed when RankMe < this fraction of min(N, D).", default=0.05)
    collapse_min_std_ratio: float = _help(
        "Collapsed when the mean per-dimension std of normalised embeddings < this / sqrt(D).", default=0.1
    )

    # --- publishing -------------------------------------------------------------------------------------
    push_to_hub: bool = _help(
        "After training, write a model card into output_dir/model and upload that folder to hub_model_id.",
        default=False,
    )
    hub_model_id: str | None = _help("Hub repo for push_to_hub, 'user/name' or 'org/name'.", default=None)
    hub_private_repo: bool = _help("Create the hub_model_id repo as private.", default=False)
    hub_license: str | None = _help(
        "Hub license id in the pushed model card (e.g. apache-2.0). None: the base models' license when they all "
        "state the same one, else 'other'; the card lists each base model's license either way.",
        default=None,
    )
    hub_token: str | None = _help(
        "Token for push_to_hub (default: HF_TOKEN or `hf auth login`, which are preferred: a flag is visible in "
        "the process list). Kept in memory only; written as <redacted> in config.yaml and run_info.json.",
        default=None,
    )

    def collapse_monitor_config(self):
        """The :class:`~jepa_core.monitoring.CollapseMonitorConfig` of the ``collapse_*`` fields."""
        from jepa_core.monitoring import CollapseMonitorConfig

        return CollapseMonitorConfig(
            buffer_size=self.collapse_buffer_size, min_vectors=self.collapse_min_vectors,
            min_rank_fraction=self.collapse_min_rank_fraction, min_std_ratio=self.collapse_min_std_ratio,
        )  # fmt: skip

    @property
    def trackers(self) -> list[str]:
        """The Accelerate trackers named by ``report_to`` ([] for 'none'), checked to be known and installed."""
        from vljepa.training.trackers import resolve_trackers

        return resolve_trackers(self.report_to)

    def __post_init__(self) -> None:
        from vljepa.training.trackers import resolve_trackers

        resolve_trackers(self.report_to)  # an unknown or uninstalled tracker fails here, before any training work
        for name in ("caption_dataset_kwargs", "query_dataset_kwargs", "eval_dataset_kwargs"):
            setattr(self, name, json_mapping_text(getattr(self, name), name))
        if self.caption_dataset is None and self.query_dataset is None:
            raise ValueError("set caption_dataset and/or query_dataset: there is nothing to train on")
        for name in ("caption_epochs", "query_epochs"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        positive = ("per_device_train_batch_size", "gradient_accumulation_steps", "feature_batch_size",
                    "eval_batch_size", "logging_steps", "save_total_limit")
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.torch_num_threads is not None and self.torch_num_threads < 1:
            raise ValueError(f"torch_num_threads must be >= 1 or None, got {self.torch_num_threads}")
        if self.dataloader_num_workers < 0:
            raise ValueError(f"dataloader_num_workers must be >= 0, got {self.dataloader_num_workers}")
        if self.learning_rate <= 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")
        if self.y_encoder_lr_multiplier < 0:
            raise ValueError(f"y_encoder_lr_multiplier must be >= 0, got {self.y_encoder_lr_multiplier}")
        if not 0 <= self.warmup_ratio < 1:
            raise ValueError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        if self.eval_steps < 0 or self.save_steps < 0:
            raise ValueError("eval_steps and save_steps must be >= 0")
        if self.eval_task != "none" and self.eval_dataset is None:
            raise ValueError(f"eval_task={self.eval_task!r} needs eval_dataset (or set eval_task: none)")
        if self.max_image_pixels < 1:
            raise ValueError(f"max_image_pixels must be >= 1, got {self.max_image_pixels}")
        if self.max_train_samples is not None and self.max_train_samples < 1:
            raise ValueError(f"max_train_samples must be >= 1, got {self.max_train_samples}")
        try:
            self.collapse_monitor_config()
        except ValueError as err:
            raise ValueError(f"collapse monitoring: {err} (fields collapse_*)") from err
        if self.push_to_hub and not self.hub_model_id:
            raise ValueError("push_to_hub needs hub_model_id ('user/name' or 'org/name')")
        if self.hub_model_id is not None and (self.hub_model_id.count("/") != 1 or not all(self.hub_model_id.split("/"))):
            raise ValueError(f"hub_model_id must be 'user/name' or 'org/name', got {self.hub_model_id!r}")
