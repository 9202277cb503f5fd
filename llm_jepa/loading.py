"""Load a causal LM for LLM-JEPA training (full, LoRA, QLoRA), save it, and load a trained one for generation.

The predictor tokens ``[PRED_1..k]`` are added to the tokenizer as special tokens; new embedding rows start at
the mean of the existing rows (deterministic, so an adapter reloads onto an identically resized base). With
LoRA / QLoRA those rows train through peft's ``trainable_token_indices`` and are saved in the adapter (a few
rows, not the whole embedding matrix).

A trained output folder holds the model (full weights, merged weights, or a peft adapter), the tokenizer with
the [PRED] tokens, and ``llm_jepa_config.json`` naming the base model (id + revision), k, the objective and
the fine-tuning method. :func:`load_for_inference` reads it back.

>>> model, tokenizer = load_for_inference("runs/llm_jepa/regex-smollm2-lora")   # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from llm_jepa.arguments import LLMJepaModelArguments
from llm_jepa.views import pred_token_strings

logger = logging.getLogger(__name__)

SAVED_CONFIG_NAME = "llm_jepa_config.json"
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass
class SavedLLMJepaConfig:
    """What ``llm_jepa_config.json`` records beside the trained weights."""

    base_model: str = field(metadata={"help": "Hub id (or local folder) of the model that was fine-tuned."})
    base_model_revision: str | None = field(metadata={"help": "Hub revision or 'bundled:<pkg>==<ver>'."})
    peft: str = field(metadata={"help": "none, lora or qlora (how the weights were trained)."})
    weights: str = field(metadata={"help": "full (a model folder) or adapter (a peft adapter on base_model)."})
    pred_tokens: list[str] = field(metadata={"help": "The [PRED] special tokens added to the tokenizer."})
    pred_token_ids: list[int] = field(metadata={"help": "Their ids in the saved tokenizer."})
    objective: dict[str, Any] = field(default_factory=dict, metadata={"help": "The JEPA objective settings."})
    qlora_quant_type: str | None = field(default=None, metadata={"help": "4-bit type when peft=qlora."})

    def write(self, folder: str | Path) -> None:
        from jepa_core.rundir import write_json

        write_json(Path(folder) / SAVED_CONFIG_NAME, self.__dict__)

    @classmethod
    def read(cls, folder: str | Path) -> SavedLLMJepaConfig:
        path = Path(folder) / SAVED_CONFIG_NAME
        data = json.loads(path.read_text())
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"{path}: unknown keys {unknown}; written by a newer llm_jepa?")
        return cls(**data)


def add_pred_tokens(tokenizer: Any, model: Any, num_pred_tokens: int) -> list[int]:
    """Add ``[PRED_1..k]`` to ``tokenizer`` and give them embedding rows in ``model``; return their ids.

    Rows are added only when the tokenizer outgrows the embedding matrix; new rows (input and, if untied,
    output embeddings) are set to the mean of the existing rows, so re-running this on the same base gives
    the same weights.
    """
    tokens = pred_token_strings(num_pred_tokens)
    if tokens:
        tokenizer.add_tokens(tokens, special_tokens=True)
    ids = tokenizer.convert_tokens_to_ids(tokens)
    if any(i is None or i == tokenizer.unk_token_id for i in ids):
        raise ValueError(f"the tokenizer did not register the predictor tokens {tokens} (ids {ids})")
    grow_embeddings(model, len(tokenizer))
    return list(ids)


def grow_embeddings(model: Any, num_rows: int) -> None:
    """Resize the (input and output) embeddings to ``num_rows`` if larger; new rows = mean of the old rows.

    Under DeepSpeed ZeRO-3 (weights partitioned while loading) the rows are written inside
    ``deepspeed.zero.GatheredParameters`` on rank 0 and broadcast (``resize_token_embeddings`` gathers on its
    own); the row count comes from ``num_embeddings``, which a partitioned weight's shape does not show.
    """
    old_rows = model.get_input_embeddings().num_embeddings
    if num_rows <= old_rows:
        return
    model.resize_token_embeddings(num_rows, mean_resizing=False)
    fill_new_rows(model, old_rows)


def _gathered_for_update(params: list[torch.nn.Parameter]) -> Any:
    """A context in which ``params`` are whole and writes on rank 0 reach every rank (ZeRO-3), else a no-op."""
    from transformers.integrations.deepspeed import is_deepspeed_zero3_enabled

    if not is_deepspeed_zero3_enabled():
        return contextlib.nullcontext()
    import deepspeed

    return deepspeed.zero.GatheredParameters(params, modifier_rank=0)


def fill_new_rows(model: Any, old_rows: int) -> None:
    """Set the embedding rows from ``old_rows`` on (input and, if untied, output) to the mean of the rows above."""
    modules = (model.get_input_embeddings(), model.get_output_embeddings())
    weights = list({id(m.weight): m.weight for m in modules if m is not None}.values())  # tied: one weight
    with _gathered_for_update(weights), torch.no_grad():
        for weight in weights:
            weight[old_rows:] = weight[:old_rows].float().mean(dim=0).to(weight.dtype)


def _record_revision(model_args: LLMJepaModelArguments, folder: Path) -> str | None:
    """The revision a run should record: the bundled provenance when the resolver used a bundled copy."""
    provenance = folder / "jepa_bundled.json"
    if provenance.is_file():
        return json.loads(provenance.read_text()).get("revision")
    return model_args.model_revision


def resolve_base(model_args: LLMJepaModelArguments) -> tuple[Path, str | None]:
    """Local folder of the base model (via ``jepa_core.resolver``) and the revision to record."""
    from jepa_core.resolver import resolve_model

    folder = Path(resolve_model(model_args.model_name_or_path, model_args.model_revision))
    return folder, _record_revision(model_args, folder)


def _quantization_config(quant_type: str, dtype: torch.dtype) -> Any:
    from transformers import BitsAndBytesConfig

    from jepa_core.extras import require

    require("bitsandbytes", extra="qlora", purpose="peft: qlora (a 4-bit base model)")

    return BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type=quant_type, bnb_4bit_compute_dtype=dtype,
        bnb_4bit_use_double_quant=True,
    )


def load_model_for_training(
    model_args: LLMJepaModelArguments,
    *,
    num_pred_tokens: int,
    gradient_checkpointing: bool = False,
    device_map: dict[str, Any] | None = None,
) -> tuple[Any, Any, list[int], SavedLLMJepaConfig]:
    """Build the trainable model: base + [PRED] tokens (+ LoRA / QLoRA adapters).

    ``device_map`` is passed to ``from_pretrained`` (QLoRA quantises while loading onto that device).
    Returns ``(model, tokenizer, pred_token_ids, saved_config)``; ``saved_config.objective`` is for the
    caller to fill.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, revision = resolve_base(model_args)
    dtype = DTYPES[model_args.model_dtype]
    tokenizer = AutoTokenizer.from_pretrained(folder)
    kwargs: dict[str, Any] = {"dtype": dtype, "attn_implementation": model_args.attn_implementation}
    if model_args.peft == "qlora":
        kwargs["quantization_config"] = _quantization_config(model_args.qlora_quant_type, dtype)
    if device_map is not None:
        kwargs["device_map"] = device_map
    model = AutoModelForCausalLM.from_pretrained(folder, **kwargs)
    pred_ids = add_pred_tokens(tokenizer, model, num_pred_tokens)

    if model_args.peft != "none":
        from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

        if model_args.peft == "qlora":
            model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=gradient_checkpointing)
        target = model_args.lora_target_modules
        lora = LoraConfig(
            r=model_args.lora_r,
            lora_alpha=model_args.lora_alpha,
            lora_dropout=model_args.lora_dropout,
            target_modules=target[0] if target == ["all-linear"] else list(target),
            trainable_token_indices=_embedding_token_indices(model, pred_ids),
            task_type="CAUSAL_LM",
        )
        model = get_peft_model(model, lora)
        # The adapter must name the model id, not this machine's resolved cache folder.
        model.peft_config["default"].base_model_name_or_path = model_args.model_name_or_path
        if gradient_checkpointing:
            model.enable_input_require_grads()
    saved = SavedLLMJepaConfig(
        base_model=model_args.model_name_or_path,
        base_model_revision=revision,
        peft=model_args.peft,
        weights="adapter" if model_args.peft != "none" and not model_args.save_merged else "full",
        pred_tokens=pred_token_strings(num_pred_tokens),
        pred_token_ids=pred_ids,
        qlora_quant_type=model_args.qlora_quant_type if model_args.peft == "qlora" else None,
    )
    return model, tokenizer, pred_ids, saved


def _embedding_token_indices(model: Any, pred_ids: list[int]) -> dict[str, list[int]] | None:
    """``trainable_token_indices`` for peft: the input embedding module's name -> the [PRED] ids."""
    if not pred_ids:
        return None
    embedding = model.get_input_embeddings()
    for name, module in model.named_modules():
        if module is embedding:
            return {name.split(".")[-1]: list(pred_ids)}
    raise ValueError("cannot find the input embedding module by name to train the [PRED] tokens")


def save_trained(model: Any, tokenizer: Any, output_dir: str | Path, saved: SavedLLMJepaConfig) -> Path:
    """Write the final model (adapter, merged or full), the tokenizer and ``llm_jepa_config.json``."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    is_peft = hasattr(model, "peft_config")
    if is_peft and saved.weights == "full":
        model = model.merge_and_unload()
        is_peft = False
    if is_peft:
        # Trainable tokens store the [PRED] rows; the rest of the embedding matrix is the base's.
        model.save_pretrained(output_dir, save_embedding_layers=False)
    else:
        model.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    saved.write(output_dir)
    return output_dir


def load_for_inference(
    path: str | Path, *, merge: bool = False, dtype: str | None = None, device: str | torch.device | None = None
) -> tuple[Any, Any]:
    """Load a trained LLM-JEPA output folder for generation: ``(model in eval mode, tokenizer)``.

    Works for full / merged model folders and for peft adapters (LoRA on a full-precision base; QLoRA on a
    4-bit base, as trained, unless ``merge`` asks for a merged full-precision model).

    Args:
        path: folder written by ``llm-jepa train`` (holds ``llm_jepa_config.json``) or any model / adapter folder.
        merge: merge a LoRA adapter into the base weights (faster generation, no peft at run time).
        dtype: float32 / bfloat16 / float16 (default: float32).
        device: where to put the model (default: CPU).
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"{path} is not a folder written by llm-jepa train")
    torch_dtype = DTYPES[dtype or "float32"]
    tokenizer = AutoTokenizer.from_pretrained(path)
    saved = SavedLLMJepaConfig.read(path) if (path / SAVED_CONFIG_NAME).is_file() else None
    if not (path / "adapter_config.json").is_file():
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"{path} holds neither config.json nor adapter_config.json")
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype)
    else:
        from peft import PeftConfig, PeftModel

        from jepa_core.resolver import resolve_model

        base_id = saved.base_model if saved else PeftConfig.from_pretrained(str(path)).base_model_name_or_path
        revision = saved.base_model_revision if saved else None
        kwargs: dict[str, Any] = {"dtype": torch_dtype}
        if saved is not None and saved.peft == "qlora" and not merge:
            kwargs["quantization_config"] = _quantization_config(saved.qlora_quant_type or "nf4", torch_dtype)
        base = AutoModelForCausalLM.from_pretrained(resolve_model(base_id, revision), **kwargs)
        grow_embeddings(base, len(tokenizer))
        model = PeftModel.from_pretrained(base, str(path))
        if merge:
            model = model.merge_and_unload()
    if device is not None:
        model.to(device)
    model.eval()
    return model, tokenizer

