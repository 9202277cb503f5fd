"""FSDP and DeepSpeed set-up of :class:`~vljepa.training.trainer.VLJEPATrainer` (the Accelerate plugins).

- FSDP: the auto-wrap units are the predictor's transformer layer classes, read from the model itself
  (``predictor.layers`` and, with ``predictor_query_context: lm_prefix``, the frozen
  ``predictor.query_context.layers``), not from names. A layer holding only frozen parameters is a valid FSDP2
  unit; FSDP version 1 needs ``fsdp_use_orig_params: true`` for units that mix frozen and trainable parameters
  (checked by :func:`jepa_core.backends.check_launch_backend`). Frozen encoders are not in the optimizer, so they have no sharded
  optimizer state.
- DeepSpeed: the trainer builds its own per-process loaders (:class:`~vljepa.training.data.MicroBatches`,
  already split by rank), so ZeRO cannot size its batch from a prepared dataloader; the recipe's batch size,
  accumulation and clipping are written into the DeepSpeed config instead (accelerate's documented
  alternative), and explicit config values that disagree with the recipe are refused.

Neither backend runs on a CPU with accelerate 1.x (see :mod:`jepa_core.backends`); what the tests check is the
configuration these functions build. No FSDP or DeepSpeed run of this trainer has been measured.
"""

from __future__ import annotations

import functools
from typing import Any

from torch import nn

from jepa_core.backends import LaunchBackend, UnsupportedBackendError


def shardable_layer_classes(model: nn.Module) -> list[type[nn.Module]]:
    """Classes of the predictor's transformer layers (trainable and frozen query-context ones), sorted by name;
    empty for a model without a predictor (the dual encoder: FSDP then shards the whole model as one unit)."""
    predictor = getattr(model, "predictor", None)
    if predictor is None:
        return []
    layers = list(predictor.layers)
    context = getattr(predictor, "query_context", None)
    if context is not None:
        layers += list(context.layers)
    return sorted({type(layer) for layer in layers}, key=lambda cls: cls.__name__)


def configure_fsdp(plugin: Any, model: nn.Module) -> list[str]:
    """With a transformer-based auto-wrap policy and no layer classes named in the Accelerate config, wrap the
    predictor's layer classes; return the class names FSDP will wrap."""
    from torch.distributed.fsdp.wrap import transformer_auto_wrap_policy

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
