"""VL-JEPA under FSDP / DeepSpeed / mixed precision: the configuration the trainer builds and the checks it makes
before loading a model. FSDP and DeepSpeed do not run on a CPU with accelerate 1.x (see jepa_core.backends), so
the sharded runs themselves are untested here; the wrap units, the DeepSpeed config, the gathered-weights save
and the launcher's precision are."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from jepa_core.backends import LaunchBackend, UnsupportedBackendError
from vljepa.training.arguments import VLJEPAModelArguments, VLJEPATrainingArguments
from vljepa.training.sharding import (
    check_sharded_run,
    configure_deepspeed,
    configure_fsdp,
    shardable_layer_classes,
)

pytest_plugins = ["test_vljepa_kit"]  # vl_tiny_st, tiny_model, one_torch_thread
pytestmark = pytest.mark.usefixtures("one_torch_thread")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def fresh_accelerate_state():
    """Accelerate keeps one process-wide state; a test that changes its precision starts and ends afresh."""
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)
    yield
    AcceleratorState._reset_state(reset_partial_state=True)


def _lm_prefix_model(tiny_clip, tiny_llama3, vl_tiny_st):
    from test_vljepa_kit import tiny_config

    from vljepa.modeling import VLJEPAModel

    torch.manual_seed(0)
    config = tiny_config(tiny_clip, tiny_llama3, vl_tiny_st, predictor_num_layers=1, predictor_query_context="lm_prefix")
    return VLJEPAModel.from_config(config)


def test_fsdp_wraps_the_predictor_layers_found_in_the_model(tiny_clip, tiny_llama3, vl_tiny_st, monkeypatch):
    """With the shipped fsdp.yaml settings (FSDP2, TRANSFORMER_BASED_WRAP, no class names), the wrap units are the
    predictor's layer class, read from the model; the frozen parts (encoders, query embeddings, the frozen
    query-context LM layers of the same class) are FSDP-ignored, so they stay whole and out of the optimizer."""
    from accelerate.utils import FullyShardedDataParallelPlugin
    from accelerate.utils.fsdp_utils import fsdp2_prepare_auto_wrap_policy

    model = _lm_prefix_model(tiny_clip, tiny_llama3, vl_tiny_st)
    layer_class = type(model.predictor.layers[0])
    assert shardable_layer_classes(model) == [layer_class]
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    plugin = FullyShardedDataParallelPlugin(fsdp_version=2, auto_wrap_policy="transformer_based_wrap")
    assert configure_fsdp(plugin, model) == [layer_class.__name__]
    ignored = {id(p) for module in plugin.ignored_modules for p in module.parameters()}
    assert not any(p.requires_grad for module in plugin.ignored_modules for p in module.parameters())
    for part in (model.x_encoder, model.predictor.query_context, model.predictor.token_embeddings):
        assert {id(p) for p in part.parameters()} <= ignored
    policy = fsdp2_prepare_auto_wrap_policy(plugin, model)
    wrapped = {name for name, module in model.named_modules() if policy(module)}
    trainable_units = {f"predictor.layers.{i}" for i in range(len(model.predictor.layers))}
    assert trainable_units <= wrapped and not any(name.startswith(("x_encoder", "y_encoder")) for name in wrapped)


def test_fsdp_keeps_class_names_the_config_gives(tiny_model, monkeypatch):
    from accelerate.utils import FullyShardedDataParallelPlugin

    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    plugin = FullyShardedDataParallelPlugin(fsdp_version=2, auto_wrap_policy="transformer_based_wrap",
                                            transformer_cls_names_to_wrap=["SomethingElse"])
    assert configure_fsdp(plugin, tiny_model) == ["SomethingElse"]


def test_deepspeed_config_takes_the_recipe_batch(monkeypatch):
    """The plugin accelerate builds from deepspeed-zero2.yaml leaves batch / accumulation / clipping to the
    recipe; the trainer fills them (it prepares no dataloader, so ZeRO could not size its batch otherwise)."""
    import yaml
    from accelerate.utils import DeepSpeedPlugin

    shipped = yaml.safe_load((ROOT / "recipes" / "accelerate" / "deepspeed-zero2.yaml").read_text())
    assert "gradient_accumulation_steps" not in shipped["deepspeed_config"]
    monkeypatch.setenv("ACCELERATE_USE_DEEPSPEED", "true")
    monkeypatch.setenv("ACCELERATE_DEEPSPEED_ZERO_STAGE", str(shipped["deepspeed_config"]["zero_stage"]))
    config = DeepSpeedPlugin().deepspeed_config
    configure_deepspeed(config, micro_batch_size=8, gradient_accumulation_steps=4, max_grad_norm=0.5)
    assert (config["train_micro_batch_size_per_gpu"], config["gradient_accumulation_steps"],
            config["gradient_clipping"]) == (8, 4, 0.5)
    assert config["zero_optimization"]["stage"] == 2
    with pytest.raises(ValueError, match="gradient_accumulation_steps=1 but the recipe's gradient_accumulation_steps is 4"):
        configure_deepspeed({"gradient_accumulation_steps": 1}, micro_batch_size=8, gradient_accumulation_steps=4,
                            max_grad_norm=1.0)


def _training_args(tmp_path, **overrides) -> VLJEPATrainingArguments:
    args = VLJEPATrainingArguments(
        output_dir=str(tmp_path / "run"), caption_dataset="scenes",
        caption_dataset_kwargs='{"num_images": 8, "use_cache": false}', per_device_train_batch_size=4,
        eval_task="none", report_to="none", logging_steps=1, feature_cache_dir=str(tmp_path / "cache"),
        monitor_collapse=False,
    )  # fmt: skip
    return dataclasses.replace(args, **overrides)


@pytest.mark.parametrize(("backend", "overrides", "match"), [
    (LaunchBackend("DeepSpeed", zero_stage=2), {"on_nonfinite_loss": "skip"}, "on_nonfinite_loss: stop"),
    (LaunchBackend("FSDP", fsdp_version=2), {"eval_steps": 5, "eval_task": "vqa", "eval_dataset": "scenes-vqa"},
     "eval_steps: 0"),
])  # fmt: skip
def test_settings_that_would_fail_later_are_refused_at_start(tmp_path, backend, overrides, match):
    with pytest.raises(UnsupportedBackendError, match=match):
        check_sharded_run(backend, _training_args(tmp_path, **overrides))
    check_sharded_run(LaunchBackend("DDP / single process"), _training_args(tmp_path, **overrides))


def test_unsupported_launch_is_refused_before_a_model_is_built(tmp_path, monkeypatch):
    from vljepa.training import trainer as trainer_module

    def no_model(*args, **kwargs):
        raise AssertionError("a model was built")

    monkeypatch.setattr(trainer_module, "build_model", no_model)
    monkeypatch.setenv("ACCELERATE_USE_MEGATRON_LM", "true")
    with pytest.raises(UnsupportedBackendError, match="Megatron-LM.*supported: single process"):
        trainer_module.VLJEPATrainer(VLJEPAModelArguments(), _training_args(tmp_path)).train()


def test_save_pretrained_writes_a_gathered_state_dict(tiny_model, tmp_path):
    """The FSDP save path: the full state dict gathered by accelerator.get_state_dict (here: a modified copy) is
    what lands in the folder, frozen parts left out, and from_pretrained loads it."""
    from vljepa.modeling import VLJEPAModel

    state = {k: v.clone() for k, v in tiny_model.state_dict().items()}
    key = next(k for k in tiny_model.persistent_state_dict() if k.startswith("predictor."))
    state[key] = torch.full_like(state[key], 0.25)
    tiny_model.save_pretrained(tmp_path / "model", state_dict=state)
    saved = load_file(tmp_path / "model" / "model.safetensors")
    assert torch.equal(saved[key], state[key]) and not any(k.startswith("x_encoder.") for k in saved)
    loaded = VLJEPAModel.from_pretrained(tmp_path / "model")
    assert torch.equal(loaded.state_dict()[key], state[key])


@pytest.mark.slow
@pytest.mark.usefixtures("fresh_accelerate_state")
@pytest.mark.parametrize(("launched", "recipe", "expected"), [("bf16", None, torch.bfloat16),
                                                              ("bf16", "no", torch.float32)])
def test_training_follows_the_launchers_precision(tmp_path, tiny_timm, tiny_llama3, vl_tiny_st, monkeypatch,
                                                  caplog, launched, recipe, expected):
    """`accelerate launch --mixed_precision bf16` sets ACCELERATE_MIXED_PRECISION=bf16: with no recipe value the
    predictor computes in bf16 during training; a recipe value wins. Both are logged."""
    import logging

    from vljepa.training import trainer as trainer_module

    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", launched)
    seen: list[torch.dtype] = []
    build = trainer_module.build_model

    def build_and_watch(model_args):
        model = build(model_args)
        model.predictor.layers[0].register_forward_hook(lambda module, inputs, output: seen.append(
            (output[0] if isinstance(output, tuple) else output).dtype))
        return model

    monkeypatch.setattr(trainer_module, "build_model", build_and_watch)
    model_args = VLJEPAModelArguments(x_encoder_id=str(tiny_timm), predictor_model_id=str(tiny_llama3),
                                      y_encoder_id=str(vl_tiny_st), predictor_num_layers=1, embedding_dim=16)
    args = _training_args(tmp_path, mixed_precision=recipe)
    with caplog.at_level(logging.INFO, logger="vljepa.training.trainer"):
        metrics = trainer_module.VLJEPATrainer(model_args, args).train()
    assert metrics["train_steps"] == 2 and seen and set(seen) == {expected}
    source = "the recipe" if recipe else "the accelerate launch"
    assert f"Mixed precision {recipe or launched} (from {source}" in caplog.text


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _probe(out: Path, models: tuple[Path, Path, Path], mode: str, *, processes: int, resume: bool = False) -> Path:
    """Run tests/vljepa/vljepa_fsdp_probe.py in one plain process or under `accelerate launch` (cpu-2proc)."""
    import os
    import subprocess
    import sys

    probe = [str(ROOT / "tests" / "vljepa" / "vljepa_fsdp_probe.py"), str(out), *map(str, models), mode]
    probe += ["--resume"] if resume else []
    command = [sys.executable, *probe] if processes == 1 else [
        sys.executable, "-m", "accelerate.commands.launch", "--config_file",
        str(ROOT / "recipes" / "accelerate" / "cpu-2proc.yaml"), "--main_process_port", str(_free_port()), *probe]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(command, check=False, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return out


@pytest.mark.slow
@pytest.mark.multiprocess
def test_fsdp_on_two_processes_matches_one_process_and_resumes_exactly(tmp_path, tiny_timm, tiny_llama3, vl_tiny_st):
    """The trainer's FSDP path (Accelerate's FSDP2 on gloo, forced on by the probe since accelerate enables FSDP
    only on GPUs), with frozen query-context LM layers in the predictor: losses and the gathered, saved weights
    equal a one-process run; evaluation runs on the saved folder; a run resumed from an FSDP checkpoint ends
    bit-identical."""
    import json
    import shutil

    models = (tiny_timm, tiny_llama3, vl_tiny_st)
    one = _probe(tmp_path / "one" / "run", models, "none", processes=1)
    fsdp = _probe(tmp_path / "fsdp" / "run", models, "fsdp", processes=2)
    assert json.loads((fsdp / "metrics.json").read_text())["num_processes"] == 2
    assert (fsdp / "checkpoints" / "step-0000002" / "pytorch_model_fsdp_0").is_dir()  # FSDP ran, sharded checkpoints
    losses_one = json.loads((one / "losses.json").read_text())
    losses_fsdp = json.loads((fsdp / "losses.json").read_text())
    assert len(losses_one) == len(losses_fsdp) == 5
    torch.testing.assert_close(torch.tensor(losses_fsdp), torch.tensor(losses_one), rtol=0, atol=1e-5)
    a, b = load_file(one / "model" / "model.safetensors"), load_file(fsdp / "model" / "model.safetensors")
    assert a.keys() == b.keys() and not any(k.startswith("x_encoder.") for k in b)
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=0, atol=1e-4, msg=key)
    assert json.loads((fsdp / "metrics.json").read_text())["vqa_accuracy"] == pytest.approx(
        json.loads((one / "metrics.json").read_text())["vqa_accuracy"])

    resumed = tmp_path / "resumed" / "run"
    shutil.copytree(fsdp, resumed)
    for name in ("model", "eval", "metrics.json", "losses.json", "checkpoints/step-0000004", "checkpoints/step-0000005"):
        shutil.rmtree(resumed / name) if (resumed / name).is_dir() else (resumed / name).unlink()
    _probe(resumed, models, "fsdp", processes=2, resume=True)
    assert json.loads((resumed / "losses.json").read_text()) == losses_fsdp[2:]
    c = load_file(resumed / "model" / "model.safetensors")
    for key in b:
        assert torch.equal(c[key], b[key]), key


def test_trainer_fills_the_deepspeed_config_before_prepare(tmp_path, tiny_model, monkeypatch):
    """What VLJEPATrainer hands to DeepSpeed when Accelerate runs it (an Accelerator under DeepSpeed cannot be
    made on a CPU, so a stand-in carries the real DeepSpeedPlugin that accelerate builds from the launch)."""
    from types import SimpleNamespace

    from accelerate.utils import DeepSpeedPlugin, DistributedType

    from vljepa.training.sharding import configure_backend

    args = _training_args(tmp_path, per_device_train_batch_size=6, gradient_accumulation_steps=3, max_grad_norm=2.0)
    monkeypatch.setenv("ACCELERATE_USE_DEEPSPEED", "true")
    monkeypatch.setenv("ACCELERATE_DEEPSPEED_ZERO_STAGE", "2")
    plugin = DeepSpeedPlugin()
    accelerator = SimpleNamespace(distributed_type=DistributedType.DEEPSPEED,
                                  state=SimpleNamespace(deepspeed_plugin=plugin))
    configure_backend(accelerator, tiny_model, args)  # what VLJEPATrainer.train calls before prepare
    config = plugin.deepspeed_config
    assert (config["train_micro_batch_size_per_gpu"], config["gradient_accumulation_steps"],
            config["gradient_clipping"]) == (6, 3, 2.0)
