"""FSDP and DeepSpeed set-up of :class:`~vljepa.training.trainer.VLJEPATrainer` (the Accelerate plugins).

- FSDP: the auto-wrap units are the predictor's transformer layer classes, read from the model itself
  (``predictor.layers``), not from names. The frozen pretrained parts (``model.frozen_prefixes()``: frozen
  encoders, frozen query embeddings, the frozen ``predictor.query_context`` LM layers) are FSDP *ignored*
  modules: replicated on every process, never sharded, not in the optimizer. Every sharded unit is then
  trainable (no mixed requires_grad inside a unit), and FSDP2's limits on the parameters it manages are
  avoided (``fully_shard`` refuses timm's channels-last, non-contiguous convolution weights). FSDP version 1
  still needs ``fsdp_use_orig_params: true`` (checked by :func:`jepa_core.backends.check_launch_backend`).
  Checkpoints (resume) are sharded; the final ``model/`` folder holds the gathered full weights.
- DeepSpeed: the trainer builds its own per-process loaders (:class:`~vljepa.training.data.MicroBatches`,
  already split by rank), so ZeRO cannot size its batch from a prepared dataloader; the recipe's batch size,
  accumulation and clipping are written into the DeepSpeed config instead (accelerate's documented
  alternative), and explicit config values that disagree with the recipe are refused.

What has been run (README, "Distributed backends and precision"): DDP on 2 CPU/gloo processes; FSDP2 through
Accelerate's real code path on 2 CPU/gloo processes, forced on by ``tests/vljepa/vljepa_fsdp_probe.py`` because
accelerate 1.x enables FSDP only on GPUs (loss and gathered weights equal one process, resume is bit-exact;
periodic evaluation is refused under FSDP, the final one reads the saved folder). DeepSpeed is not installed
where the tests run: only the config built here is tested. Nothing has been measured on a GPU.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from torch import nn

from jepa_core.backends import LaunchBackend, UnsupportedBackendError

logger = logging.getLogger(__name__)


def shardable_layer_classes(model: nn.Module) -> list[type[nn.Module]]:
    """Classes of the predictor's trainable transformer layers, sorted by name; empty for a model without a
    predictor (the dual encoder: FSDP then shards its trainable parts as one unit)."""
    predictor = getattr(model, "predictor", None)
    if predictor is None:
        return []
    return sorted({type(layer) for layer in predictor.layers}, key=lambda cls: cls.__name__)


def frozen_modules(model: nn.Module) -> list[nn.Module]:
    """The frozen pretrained submodules (``model.frozen_prefixes()``), which FSDP leaves unsharded."""
    return [model.get_submodule(prefix.rstrip(".")) for prefix in model.frozen_prefixes()]


def configure_fsdp(plugin: Any, model: nn.Module) -> list[str]:
    """With a transformer-based auto-wrap policy and no layer classes named in the Accelerate config, wrap the
    predictor's layer classes; leave the frozen parts unsharded (unless the config names its own
    ``fsdp_ignored_modules``); write FSDP2 checkpoints sharded. Return the class names FSDP will wrap."""
    from torch.distributed.fsdp import StateDictType
    from torch.distributed.fsdp.wrap import transformer_auto_wrap_policy

    if plugin.ignored_modules is None:
        plugin.ignored_modules = frozen_modules(model)
    if plugin.fsdp_version == 2 and plugin.state_dict_type == StateDictType.FULL_STATE_DICT:
        # Checkpoints only: the final model is always gathered whole (accelerator.get_state_dict). Loading a
        # full-state checkpoint broadcasts from rank 0 and fails on the embedding the predictor shares with
        # its query context (KeyError 'predictor.query_context.token_embeddings.weight', torch 2.13).
        logger.info("FSDP checkpoints: SHARDED_STATE_DICT (the final model folder is gathered whole)")
        plugin.state_dict_config = plugin.optim_state_dict_config = None  # rebuilt for the sharded type
        plugin.set_state_dict_type("SHARDED_STATE_DICT")

    policy = plugin.auto_wrap_policy
    if isinstance(policy, functools.partial):
        policy = policy.func
    if policy is transformer_auto_wrap_policy and plugin.transformer_cls_names_to_wrap is None:
        plugin.transformer_cls_names_to_wrap = [cls.__name__ for cls in shardable_layer_classes(model)]
    return list(plugin.transformer_cls_names_to_wrap or [])


def _fill(config: dict[str, Any], key: str, value: Any, recipe_field: str) -> None:
    current = config.get(key, "auto")
    if current == "auto":
        config[key] = value
    elif current != value:
        raise ValueError(
            f"the DeepSpeed config sets {key}={current!r} but the recipe's {recipe_field} is {value!r}; remove "
            f"{key} from the DeepSpeed / Accelerate config (or set it to 'auto') so the recipe decides"
        )


def configure_deepspeed(
    config: dict[str, Any], *, micro_batch_size: int, gradient_accumulation_steps: int, max_grad_norm: float
) -> dict[str, Any]:
    """Fill the DeepSpeed config (``accelerator.state.deepspeed_plugin.deepspeed_config``, in place) with the
    recipe's per-device batch, accumulation and clipping; return it."""
    _fill(config, "train_micro_batch_size_per_gpu", micro_batch_size, "per_device_train_batch_size")
    _fill(config, "gradient_accumulation_steps", gradient_accumulation_steps, "gradient_accumulation_steps")
    _fill(config, "gradient_clipping", float(max_grad_norm), "max_grad_norm")
    return config


def check_sharded_run(backend: LaunchBackend, args: Any) -> None:
    """Refuse, before any model is built, recipe settings that would fail or misbehave later under ``backend``."""
    if backend.name == "DeepSpeed" and args.on_nonfinite_loss == "skip":
        raise UnsupportedBackendError(
            "on_nonfinite_loss: skip cannot work under DeepSpeed (its engine applies the update inside "
            "accelerator.backward, before the trainer sees every process's loss); use on_nonfinite_loss: stop"
        )
    if backend.name == "FSDP" and args.eval_steps > 0:
        raise UnsupportedBackendError(
            "periodic evaluation (eval_steps > 0) is not supported under FSDP: the evaluation reads the predictor "
            "outside its sharded forward. Set eval_steps: 0; the final evaluation runs on the gathered, saved model."
        )


def configure_backend(accelerator: Any, model: nn.Module, args: Any) -> None:
    """Before ``accelerator.prepare``: FSDP wraps the predictor's layers; DeepSpeed sizes its batch from the recipe
    (the trainer prepares no dataloader)."""
    from accelerate.utils import DistributedType

    if accelerator.distributed_type == DistributedType.FSDP:
        wrapped = configure_fsdp(accelerator.state.fsdp_plugin, model)
        logger.info("FSDP wraps %s", ", ".join(wrapped) or "the whole model as one unit")
    elif accelerator.distributed_type == DistributedType.DEEPSPEED:
        configure_deepspeed(
            accelerator.state.deepspeed_plugin.deepspeed_config, micro_batch_size=args.per_device_train_batch_size,
            gradient_accumulation_steps=args.gradient_accumulation_steps, max_grad_norm=args.max_grad_norm,
        )  # fmt: skip
