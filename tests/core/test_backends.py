"""Launch backends: unsupported ones (and FSDP / DeepSpeed on the CPU, QLoRA under sharding) are refused with the
backend and the supported list; the precision follows the launcher unless the recipe sets one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from jepa_core.backends import UnsupportedBackendError, check_launch_backend, launch_backend, precision_choice

ROOT = Path(__file__).resolve().parents[2]
FSDP2 = {"ACCELERATE_USE_FSDP": "true", "FSDP_VERSION": "2"}
ZERO2 = {"ACCELERATE_USE_DEEPSPEED": "true", "ACCELERATE_DEEPSPEED_ZERO_STAGE": "2"}
ZERO3 = {"ACCELERATE_USE_DEEPSPEED": "true", "ACCELERATE_DEEPSPEED_ZERO_STAGE": "3"}


@pytest.mark.parametrize("trainer", ["vljepa", "llm_jepa"])
@pytest.mark.parametrize(("env", "xla", "named"), [
    ({"ACCELERATE_USE_MEGATRON_LM": "true"}, False, "Megatron-LM"),
    ({}, True, "XLA/TPU"),
])  # fmt: skip
def test_unsupported_backend_is_named_with_the_supported_ones(trainer, env, xla, named):
    with pytest.raises(UnsupportedBackendError) as err:
        check_launch_backend(trainer, use_cpu=False, env=env, xla_available=xla)
    message = str(err.value)
    assert named in message and "supported: single process, DDP" in message and "FSDP (GPU)" in message


@pytest.mark.parametrize("trainer", ["vljepa", "llm_jepa"])
@pytest.mark.parametrize("env", [FSDP2, ZERO2], ids=["fsdp", "zero2"])
def test_sharding_on_the_cpu_is_refused_not_silently_unsharded(trainer, env):
    with pytest.raises(UnsupportedBackendError, match="silently fall back to unsharded DDP"):
        check_launch_backend(trainer, use_cpu=True, env=env, xla_available=False)
    assert check_launch_backend(trainer, use_cpu=False, env=env, xla_available=False).is_sharded


def test_zero3_is_refused_for_vljepa_only():
    with pytest.raises(UnsupportedBackendError, match="ZeRO-3.*deepspeed-zero2.yaml"):
        check_launch_backend("vljepa", use_cpu=False, env=ZERO3, xla_available=False)
    assert check_launch_backend("llm_jepa", use_cpu=False, env=ZERO3, xla_available=False).zero_stage == 3


@pytest.mark.parametrize("env", [FSDP2, ZERO2, ZERO3], ids=["fsdp", "zero2", "zero3"])
def test_qlora_under_sharding_is_refused_with_what_to_use(env):
    with pytest.raises(UnsupportedBackendError, match="peft: qlora cannot.*Use peft: lora.*multi-gpu-ddp.yaml"):
        check_launch_backend("llm_jepa", use_cpu=False, qlora=True, env=env, xla_available=False)
    assert check_launch_backend("llm_jepa", use_cpu=False, qlora=True, env={}, xla_available=False).name.startswith("DDP")


def test_fsdp1_needs_orig_params_for_mixed_frozen_and_trainable():
    fsdp1 = {"ACCELERATE_USE_FSDP": "true", "FSDP_VERSION": "1", "FSDP_USE_ORIG_PARAMS": "false"}
    with pytest.raises(UnsupportedBackendError, match="fsdp_use_orig_params: true or fsdp_version: 2"):
        check_launch_backend("vljepa", use_cpu=False, env=fsdp1, xla_available=False)
    assert check_launch_backend("llm_jepa", use_cpu=False, mixed_trainable=False, env=fsdp1, xla_available=False)
    assert check_launch_backend("vljepa", use_cpu=False, env={**fsdp1, "FSDP_USE_ORIG_PARAMS": "true"},
                                xla_available=False).fsdp_version == 1


def test_zero_stage_from_a_deepspeed_config_file(tmp_path):
    config = tmp_path / "ds.json"
    config.write_text(json.dumps({"zero_optimization": {"stage": 3}}))
    env = {"ACCELERATE_USE_DEEPSPEED": "true", "ACCELERATE_DEEPSPEED_CONFIG_FILE": str(config)}
    assert launch_backend(env, xla_available=False).describe() == "DeepSpeed ZeRO-3"


def test_precision_follows_the_launcher_unless_the_recipe_sets_it():
    assert precision_choice(None, {"ACCELERATE_MIXED_PRECISION": "bf16"})[0] == "bf16"
    assert precision_choice("no", {"ACCELERATE_MIXED_PRECISION": "bf16"}) == ("no", "the recipe")
    assert precision_choice(None, {})[0] == "no"


def _launch_env(config: str, script: Path) -> dict[str, str]:
    """The environment `accelerate launch --config_file recipes/accelerate/<config>` gives its worker."""
    script.write_text("import json, os\nprint(json.dumps(dict(os.environ)))\n")
    done = subprocess.run(
        [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(ROOT / "recipes" / "accelerate" / config),
         "--num_processes", "1", str(script)],
        capture_output=True, text=True, timeout=300, cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"}, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        pytest.fail(done.stderr[-2000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.multiprocess
def test_the_shipped_fsdp_config_is_read_as_fsdp2_with_bf16(tmp_path):
    """What the launcher really sets from recipes/accelerate/fsdp.yaml, read by launch_backend and precision_choice."""
    env = _launch_env("fsdp.yaml", tmp_path / "env.py")
    backend = launch_backend(env, xla_available=False)
    assert (backend.name, backend.fsdp_version) == ("FSDP", 2)
    assert precision_choice(None, env)[0] == "bf16"


@pytest.mark.parametrize("command", ["vljepa", "llm_jepa"])
def test_cli_names_the_backend_and_exits_2(command, monkeypatch, capsys):
    """`vljepa train` / `llm-jepa train` under a Megatron-LM launch: status 2 and the reason, no traceback."""
    monkeypatch.setenv("ACCELERATE_USE_MEGATRON_LM", "true")
    if command == "vljepa":
        from vljepa.cli import main

        status = main(["train", str(ROOT / "recipes" / "vljepa" / "easyvqa-effnet-minilm.yaml"), "--report_to", "none"])
    else:
        from llm_jepa.cli import main

        status = main(["train", str(ROOT / "recipes" / "llm_jepa" / "regex-smollm2-lora.yaml"), "--report_to", "none",
                       "--output_dir", "/nonexistent/never-written"])
    assert status == 2
    assert "Megatron-LM" in capsys.readouterr().err
