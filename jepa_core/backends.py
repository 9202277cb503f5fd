"""Which distributed backend ``accelerate launch`` asked for, and whether a trainer can use it.

``accelerate launch --config_file recipes/accelerate/<setup>.yaml`` tells the trainer process its backend
through environment variables (``ACCELERATE_USE_FSDP``, ``ACCELERATE_USE_DEEPSPEED`` with
``ACCELERATE_DEEPSPEED_ZERO_STAGE`` or ``ACCELERATE_DEEPSPEED_CONFIG_FILE``, ``ACCELERATE_USE_MEGATRON_LM``;
XLA is chosen whenever ``torch_xla`` is importable). :func:`check_launch_backend` reads them before any model
is loaded and refuses, naming the backend and the supported ones:

- a backend the trainer has no code path for (Megatron-LM, XLA/TPU, ZeRO-3 for VL-JEPA);
- FSDP or DeepSpeed on the CPU: accelerate 1.x turns both on only for GPU/accelerator processes. With
  ``use_cpu`` (or on a machine without a GPU) it drops the plugin without a word and runs plain DDP on gloo
  (``DistributedType.MULTI_CPU``), or, without ``use_cpu``, N unconnected processes; measured with
  accelerate 1.16 / torch 2.13 CPU. A run that asked for sharding must not silently train unsharded.
- QLoRA under FSDP or DeepSpeed (see :data:`QLORA_SHARDED_MESSAGE`).

Example::

    >>> check_launch_backend("vljepa", use_cpu=False, env={"ACCELERATE_USE_MEGATRON_LM": "true"})
    Traceback (most recent call last):
    ...
    jepa_core.backends.UnsupportedBackendError: ... Megatron-LM ...
"""

from __future__ import annotations

import importlib.util
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from jepa_core.config import ConfigError

BackendName = Literal["DDP / single process", "FSDP", "DeepSpeed", "Megatron-LM", "XLA/TPU"]

#: What each trainer can run, in words (used in error messages and the README table).
SUPPORTED_BACKENDS: dict[str, tuple[str, ...]] = {
    "vljepa": ("single process", "DDP (GPU or CPU/gloo)", "FSDP (GPU)", "DeepSpeed ZeRO-1/2 (GPU)"),
    "llm_jepa": ("single process", "DDP (GPU or CPU/gloo)", "FSDP (GPU)", "DeepSpeed ZeRO-1/2/3 (GPU)"),
}

QLORA_SHARDED_MESSAGE = (
    "peft: qlora cannot be combined with {backend}: sharding 4-bit weights needs bnb_4bit_quant_storage equal to "
    "the compute dtype plus settings jepa-hf has not tested, and a failure would come only after the model was "
    "quantised. Use peft: lora under {backend} (recipes/accelerate/fsdp.yaml, deepspeed-zero2.yaml / "
    "deepspeed-zero3.yaml), or keep peft: qlora on one GPU or under DDP (recipes/accelerate/single-gpu.yaml, "
    "multi-gpu-ddp.yaml)."
)


class UnsupportedBackendError(ConfigError):
    """The launch asked for a distributed backend this trainer cannot use (raised before loading a model; the
    ``vljepa`` / ``llm-jepa`` commands print it and exit with status 2, like any configuration error)."""


@dataclass(frozen=True)
class LaunchBackend:
    """The backend of this process's launch.

    Attributes:
        name: ``"DDP / single process"``, ``"FSDP"``, ``"DeepSpeed"``, ``"Megatron-LM"`` or ``"XLA/TPU"``.
        zero_stage: the DeepSpeed ZeRO stage when known (``None`` otherwise).
        fsdp_version: 1 or 2 under FSDP (``None`` otherwise).
        fsdp_use_orig_params: FSDP version 1's ``use_orig_params`` (``None`` when not FSDP or not set).
    """

    name: BackendName
    zero_stage: int | None = None
    fsdp_version: int | None = None
    fsdp_use_orig_params: bool | None = None

    @property
    def is_sharded(self) -> bool:
        return self.name in ("FSDP", "DeepSpeed")

    def describe(self) -> str:
        if self.name == "DeepSpeed" and self.zero_stage is not None:
            return f"DeepSpeed ZeRO-{self.zero_stage}"
        if self.name == "FSDP" and self.fsdp_version is not None:
            return f"FSDP (version {self.fsdp_version})"
        return self.name


def _flag(env: Mapping[str, str], name: str) -> bool:
    return env.get(name, "false").strip().lower() in ("1", "true", "yes")


def _zero_stage(env: Mapping[str, str]) -> int | None:
    if env.get("ACCELERATE_DEEPSPEED_ZERO_STAGE"):
        return int(env["ACCELERATE_DEEPSPEED_ZERO_STAGE"])
    config_file = env.get("ACCELERATE_DEEPSPEED_CONFIG_FILE")
    if config_file and os.path.isfile(config_file):
        with open(config_file) as handle:
            stage = json.load(handle).get("zero_optimization", {}).get("stage")
        return int(stage) if isinstance(stage, int) else None
    return None


def launch_backend(env: Mapping[str, str] | None = None, *, xla_available: bool | None = None) -> LaunchBackend:
    """The backend ``accelerate launch`` set up for this process (from ``env``, default ``os.environ``)."""
    env = os.environ if env is None else env
    if xla_available is None:
        xla_available = importlib.util.find_spec("torch_xla") is not None
    if _flag(env, "ACCELERATE_USE_MEGATRON_LM"):
        return LaunchBackend("Megatron-LM")
    if xla_available:  # accelerate picks XLA whenever torch_xla imports (PartialState._prepare_backend)
        return LaunchBackend("XLA/TPU")
    if _flag(env, "ACCELERATE_USE_DEEPSPEED"):
        return LaunchBackend("DeepSpeed", zero_stage=_zero_stage(env))
    if _flag(env, "ACCELERATE_USE_FSDP"):
        orig = _flag(env, "FSDP_USE_ORIG_PARAMS") if "FSDP_USE_ORIG_PARAMS" in env else None
        return LaunchBackend("FSDP", fsdp_version=int(env.get("FSDP_VERSION", "1")), fsdp_use_orig_params=orig)
    return LaunchBackend("DDP / single process")


def check_launch_backend(
    trainer: Literal["vljepa", "llm_jepa"],
    *,
    use_cpu: bool,
    qlora: bool = False,
    mixed_trainable: bool = True,
    env: Mapping[str, str] | None = None,
    xla_available: bool | None = None,
) -> LaunchBackend:
    """Return the launch's backend, or raise :class:`UnsupportedBackendError` when ``trainer`` cannot use it.

    Call it before loading any model. ``use_cpu`` is the trainer's resolved choice (``resolve_use_cpu``);
    ``mixed_trainable``: the model mixes frozen and trainable parameters (frozen encoders, LoRA), which FSDP
    version 1 shards only with ``use_orig_params``.
    """
    backend = launch_backend(env, xla_available=xla_available)
    supported = ", ".join(SUPPORTED_BACKENDS[trainer])
    label = "VL-JEPA (vljepa train)" if trainer == "vljepa" else "LLM-JEPA (llm-jepa train)"
    if backend.name in ("Megatron-LM", "XLA/TPU"):
        raise UnsupportedBackendError(
            f"the accelerate launch selects {backend.name}, which {label} cannot use; supported: {supported}. "
            "Launch with another --config_file from recipes/accelerate/."
        )
    if trainer == "vljepa" and backend.name == "DeepSpeed" and backend.zero_stage == 3:
        raise UnsupportedBackendError(
            f"the accelerate launch selects DeepSpeed ZeRO-3, which {label} cannot use (its evaluation and "
            f"saving read the unpartitioned predictor); supported: {supported}. Use "
            "recipes/accelerate/deepspeed-zero2.yaml or recipes/accelerate/fsdp.yaml."
        )
    if backend.is_sharded and use_cpu:
        raise UnsupportedBackendError(
            f"the accelerate launch selects {backend.describe()}, but this run is on the CPU (use_cpu, or no GPU "
            f"present): accelerate enables {backend.name} only on GPUs and would silently fall back to unsharded "
            f"DDP. Supported by {label}: {supported}. On the CPU use recipes/accelerate/cpu-2proc.yaml."
        )
    if backend.name == "FSDP" and backend.fsdp_version == 1 and mixed_trainable and not backend.fsdp_use_orig_params:
        raise UnsupportedBackendError(
            f"the accelerate launch selects FSDP version 1 without fsdp_use_orig_params, which cannot shard a model "
            f"that mixes frozen and trainable parameters ({label}: frozen encoders or LoRA); set "
            "fsdp_use_orig_params: true or fsdp_version: 2 (recipes/accelerate/fsdp.yaml)"
        )
    if qlora and backend.is_sharded:
        raise UnsupportedBackendError(QLORA_SHARDED_MESSAGE.format(backend=backend.describe()))
    return backend


def precision_choice(recipe_value: str | None, env: Mapping[str, str] | None = None) -> tuple[str, str]:
    """The mixed precision a run uses and where it came from: ``(value, "the recipe" | "the accelerate launch")``.

    An explicit recipe value wins; ``None`` takes ``ACCELERATE_MIXED_PRECISION`` (set by ``accelerate launch``
    from ``--mixed_precision`` or the config file's ``mixed_precision``), else ``"no"``.
    """
    env = os.environ if env is None else env
    if recipe_value is not None:
        return recipe_value, "the recipe"
    launched = env.get("ACCELERATE_MIXED_PRECISION")
    if launched:
        return launched.lower(), "the accelerate launch (ACCELERATE_MIXED_PRECISION)"
    return "no", "the default (no recipe value, no accelerate launch setting)"
