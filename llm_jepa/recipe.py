"""The recipe's dataclasses that need no heavy library: model, data, objective and the trainer options LLM-JEPA adds.

A recipe YAML maps one-to-one onto :class:`LLMJepaModelArguments`, :class:`DataArguments` and
:class:`llm_jepa.arguments.LLMJepaTrainingArguments` (``jepa_core.config.parse_config``); an unknown key is an error.
This module imports only the standard library (and PyYAML through :mod:`jepa_core.config`), so ``llm-jepa train
--help`` can list these fields without importing transformers or torch; :mod:`llm_jepa.arguments` builds the
training arguments on ``transformers.TrainingArguments`` from :class:`JepaObjectiveConfig` and
:class:`LLMJepaTrainerOptions`.

Loss: ``total = lm_loss_weight * L_LM + jepa_loss_weight * d(Pred(Enc(Text)), Enc(Code))`` (arXiv 2509.14252).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Literal

from jepa_core.config import parse_json_mapping

JepaDistance = Literal["cosine", "l2", "mse", "infonce"]
JepaMode = Literal["separate", "packed"]
TextView = Literal["prompt", "user"]
PeftMethod = Literal["none", "lora", "qlora"]
NonFiniteLossPolicy = Literal["stop", "skip"]
ModelDtype = Literal["float32", "bfloat16", "float16"]

BUNDLED_DEFAULT_MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"


@dataclass
class JepaObjectiveConfig:
    """The LLM-JEPA objective: weights, predictor tokens, distance, cost mode and regularisers."""

    lm_loss_weight: float = field(
        default=1.0,
        metadata={"help": "gamma: weight of the next-token loss on the assistant tokens (paper: 1.0)."},
    )
    jepa_loss_weight: float = field(
        default=1.0,
        metadata={
            "help": "lambda: weight of the JEPA term d(Pred(Enc(Text)), Enc(Code)); 0 gives plain fine-tuning "
            "(paper grid: 0.5, 1, 2, 4)."
        },
    )
    num_pred_tokens: int = field(
        default=1,
        metadata={
            "help": "k: number of learnable [PRED_i] tokens appended to the Text view; the LLM itself is the "
            "predictor. 0 means Pred is the identity (paper grid: 0..4)."
        },
    )
    jepa_loss: JepaDistance = field(
        default="cosine",
        metadata={
            "help": "d: cosine (1 - cosine similarity, the paper's choice), l2 (Euclidean distance), mse (mean "
            "squared error) or infonce (contrastive, predictions vs. targets; on several processes the negatives "
            "are gathered from the whole global batch, so 2 processes x B rows train like 1 process x 2B)."
        },
    )
    jepa_infonce_temperature: float = field(
        default=0.07, metadata={"help": "Softmax temperature of the infonce distance (unused otherwise)."}
    )
    jepa_mode: JepaMode = field(
        default="packed",
        metadata={
            "help": "separate: three forward passes (conversation, Text+[PRED], Code), the reference. packed: "
            "one forward over conversation + [PRED] + Code under a block attention mask (same loss and "
            "gradients, less compute)."
        },
    )
    jepa_stop_gradient: bool = field(
        default=False,
        metadata={
            "help": "Compute the target Enc(Code) without gradient (a no-grad forward). The paper lets the gradient "
            "flow into the target view (False)."
        },
    )
    jepa_dropout: float = field(
        default=0.0,
        metadata={
            "help": "Probability of skipping the JEPA term (and its extra compute) on a training step; the same "
            "decision on every process. The kept term is not rescaled."
        },
    )
    jepa_text_view: TextView = field(
        default="prompt",
        metadata={
            "help": "What the Text view renders: 'prompt' = every turn before the final assistant turn (system "
            "+ user), a token prefix of the conversation so packed mode reuses it; 'user' = the user turn "
            "alone, as in the paper's scripts."
        },
    )

    def __post_init__(self) -> None:
        self.validate_objective()

    def validate_objective(self) -> None:
        """Raise ``ValueError`` naming the field for out-of-range objective settings."""
        if self.lm_loss_weight < 0 or self.jepa_loss_weight < 0:
            raise ValueError(
                f"lm_loss_weight and jepa_loss_weight must be >= 0, got {self.lm_loss_weight} and "
                f"{self.jepa_loss_weight}"
            )
        if self.lm_loss_weight == 0 and self.jepa_loss_weight == 0:
            raise ValueError("lm_loss_weight and jepa_loss_weight are both 0: there is nothing to train")
        if self.num_pred_tokens < 0:
            raise ValueError(f"num_pred_tokens must be >= 0 (0 = identity predictor), got {self.num_pred_tokens}")
        if not 0.0 <= self.jepa_dropout <= 1.0:
            raise ValueError(f"jepa_dropout is a probability in [0, 1], got {self.jepa_dropout}")
        if self.jepa_infonce_temperature <= 0:
            raise ValueError(f"jepa_infonce_temperature must be > 0, got {self.jepa_infonce_temperature}")
        choices = {"jepa_loss": JepaDistance, "jepa_mode": JepaMode, "jepa_text_view": TextView}
        for name, literal in choices.items():
            if getattr(self, name) not in literal.__args__:
                raise ValueError(f"{name} must be one of {literal.__args__}, got {getattr(self, name)!r}")

    @property
    def uses_jepa(self) -> bool:
        """False when the JEPA term can never contribute (lambda = 0 or dropout = 1): plain fine-tuning."""
        return self.jepa_loss_weight > 0 and self.jepa_dropout < 1.0

    def objective_dict(self) -> dict[str, Any]:
        """The objective fields only (for model cards and the saved ``llm_jepa_config.json``)."""
        return {f.name: getattr(self, f.name) for f in fields(JepaObjectiveConfig)}


@dataclass
class LLMJepaModelArguments:
    """Which model to fine-tune and how (full, LoRA, QLoRA)."""

    model_name_or_path: str = field(
        default=BUNDLED_DEFAULT_MODEL,
        metadata={
            "help": "Hub id or local folder, resolved by jepa_core.resolver.resolve_model (offline: bundled "
            "copy). Must be a causal LM with a chat template."
        },
    )
    model_revision: str | None = field(
        default=None, metadata={"help": "Hub revision or 'bundled:<package>==<version>' (None: latest/bundled)."}
    )
    model_dtype: ModelDtype = field(
        default="float32",
        metadata={"help": "Weights dtype for training (and the QLoRA compute dtype). float32 on CPU."},
    )
    attn_implementation: str = field(
        default="sdpa",
        metadata={
            "help": "transformers attention backend. jepa_mode=packed needs one that takes a custom 4D mask: "
            "sdpa or eager."
        },
    )
    peft: PeftMethod = field(
        default="lora",
        metadata={
            "help": "none: full fine-tuning; lora: LoRA adapters via peft; qlora: LoRA on a 4-bit (bitsandbytes "
            "NF4) base. With lora/qlora the [PRED] token embeddings train too and are saved with the adapter."
        },
    )
    lora_r: int = field(default=16, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA scaling numerator (scale = alpha / r)."})
    lora_dropout: float = field(default=0.05, metadata={"help": "Dropout on the LoRA branch input."})
    lora_target_modules: list[str] = field(
        default_factory=lambda: ["all-linear"],
        metadata={"help": "Module names to adapt ('all-linear' = every linear layer except the output head)."},
    )
    qlora_quant_type: Literal["nf4", "fp4"] = field(
        default="nf4", metadata={"help": "bitsandbytes 4-bit data type for peft=qlora."}
    )
    save_merged: bool = field(
        default=False,
        metadata={
            "help": "With peft=lora, save the final model with the adapter merged into the weights (a plain "
            "model folder) instead of the adapter alone."
        },
    )

    def __post_init__(self) -> None:
        if not self.model_name_or_path:
            raise ValueError("model_name_or_path must name a Hub id or a local model folder")
        if self.peft not in PeftMethod.__args__:
            raise ValueError(f"peft must be one of {PeftMethod.__args__}, got {self.peft!r}")
        if self.model_dtype not in ModelDtype.__args__:
            raise ValueError(f"model_dtype must be one of {ModelDtype.__args__}, got {self.model_dtype!r}")
        if self.peft != "none" and (self.lora_r <= 0 or self.lora_alpha <= 0):
            raise ValueError(f"lora_r and lora_alpha must be > 0, got {self.lora_r} and {self.lora_alpha}")
        if not 0.0 <= self.lora_dropout < 1.0:
            raise ValueError(f"lora_dropout must be in [0, 1), got {self.lora_dropout}")
        if not self.lora_target_modules:
            raise ValueError("lora_target_modules must name at least one module (or 'all-linear')")
        if self.save_merged and self.peft != "lora":
            raise ValueError(
                f"save_merged needs peft=lora (got peft={self.peft!r}); a QLoRA adapter can be merged later by "
                "loading it on a full-precision base: llm_jepa.loading.load_for_inference(path, merge=True)"
            )


@dataclass
class DataArguments:
    """Where the chat examples come from (``llm_jepa.data.load_messages_dataset``) and how long they may be."""

    dataset: str = field(
        default="regex-synth",
        metadata={
            "help": "Source for llm_jepa.data.load_messages_dataset: regex-synth, gsm-symbolic, jsonl:PATH, "
            "gsm8k:PATH, spider:PATH, nl-rx:PATH."
        },
    )
    dataset_split: str = field(default="train", metadata={"help": "Split to train on."})
    dataset_kwargs: dict | str | None = field(
        default=None,
        metadata={"help": "Extra keyword arguments for the dataset loader (a YAML mapping or a JSON string)."},
    )
    eval_split: str | None = field(
        default=None, metadata={"help": "Split of the same source for eval loss during training (None: no eval)."}
    )
    max_train_examples: int | None = field(
        default=None, metadata={"help": "Keep the first N training examples (None: all)."}
    )
    max_eval_examples: int | None = field(
        default=None, metadata={"help": "Keep the first N evaluation examples (None: all)."}
    )
    max_length: int = field(
        default=512,
        metadata={
            "help": "Longest conversation in tokens; longer examples are dropped with a warning naming them "
            "(never truncated, which would cut the answer)."
        },
    )

    def __post_init__(self) -> None:
        if self.dataset_kwargs is not None:
            self.dataset_kwargs = parse_json_mapping(self.dataset_kwargs, "dataset_kwargs")
        if self.max_length < 8:
            raise ValueError(f"max_length must be >= 8 tokens, got {self.max_length}")
        for name in ("max_train_examples", "max_eval_examples"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be a positive count or null, got {value}")


@dataclass
class LLMJepaTrainerOptions:
    """The fields LLM-JEPA adds to (or re-defaults in) ``transformers.TrainingArguments``; validated by
    :class:`llm_jepa.arguments.LLMJepaTrainingArguments`."""

    remove_unused_columns: bool = field(
        default=False,
        metadata={
            "help": "Must stay False: the collator needs the view columns that the model's forward does not take."
        },
    )
    overwrite_output_dir: bool = field(
        default=False,
        metadata={
            "help": "Train into an output_dir that already holds a finished model (its files are replaced). "
            "Without it that is an error, so a finished run is never clobbered by accident."
        },
    )
    use_cpu: bool | None = field(
        default=None,
        metadata={
            "help": "Train on the CPU. None (default): the CPU exactly when no CUDA/XPU/MPS device is present, "
            "so `accelerate launch` on a CPU-only machine joins its processes with gloo instead of letting each "
            "train alone."
        },
    )
    on_nonfinite_loss: NonFiniteLossPolicy = field(
        default="stop",
        metadata={
            "help": "What a NaN/inf training loss (on any process) does. stop: raise, naming the step, before "
            "the optimizer step. skip: drop that optimizer step (no parameter or optimizer-state change), warn, "
            "and count it as skipped_nonfinite_steps in the logs and train metrics."
        },
    )
    collapse_monitor: bool = field(
        default=True,
        metadata={
            "help": "Log collapse statistics (per-dimension std, RankMe, mean cosine) of the predictions "
            "Pred(Enc(Text)) and targets Enc(Code) at each logging step (from steps where the JEPA term ran) "
            "and warn once when they look collapsed (jepa_core.monitoring)."
        },
    )
    hub_include_logs: bool = field(
        default=False,
        metadata={"help": "push_to_hub also uploads the TensorBoard event files of output_dir (off: model files, "
                          "configs, tokenizer, card and metrics only)."},
    )
