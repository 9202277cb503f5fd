"""A refused `vljepa train` writes nothing: a finished run's folder (config.yaml, run_info.json, train.log,
weights) is byte-for-byte what it was."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_vljepa_fault_tolerance import fast_argv

from vljepa.cli import main

pytest_plugins = ["test_vljepa_kit"]  # shared fixtures: vl_tiny_st, one_torch_thread
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture
def models(tiny_timm, tiny_llama3, vl_tiny_st):
    return tiny_timm, tiny_llama3, vl_tiny_st


def test_refused_train_into_a_finished_run_writes_nothing(tmp_path, models, capsys):
    argv = fast_argv(tmp_path, models, "--save_steps", "0")
    assert main(argv) == 0
    run = tmp_path / "run"
    before = snapshot(run)
    assert {"config.yaml", "run_info.json", "train.log", "model/model.safetensors"} <= set(before)
    capsys.readouterr()
    assert main([*argv, "--learning_rate", "0.5", "--seed", "7"]) == 2
    message = capsys.readouterr().err
    assert f"{run} already holds checkpoints" in message and "nothing was written" in message
    assert snapshot(run) == before

    # Checkpoints deleted but the model kept: still another run's folder.
    for checkpoint in (run / "checkpoints").iterdir():
        for path in sorted(checkpoint.rglob("*"), reverse=True):
            path.unlink() if path.is_file() else path.rmdir()
        checkpoint.rmdir()
    before = snapshot(run)
    assert main([*argv, "--learning_rate", "0.5"]) == 2
    assert "already holds a trained model" in capsys.readouterr().err
    assert snapshot(run) == before


def test_resume_without_a_checkpoint_writes_nothing(tmp_path, models, capsys):
    argv = fast_argv(tmp_path, models, "--resume", "true")
    assert main(argv) == 2
    assert "--resume: no complete checkpoint" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
