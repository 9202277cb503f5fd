"""A full disk during a VL-JEPA checkpoint, as each writer reports it (OSError ENOSPC from Python, SafetensorError
from safetensors, RuntimeError from torch.save): the partial folder is removed, the last good checkpoint stays
intact, and the error names the folder and the free space against the space a checkpoint needs."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import accelerate.utils.other as accelerate_io
import pytest
import torch
from safetensors import SafetensorError
from test_vljepa_fault_tolerance import fast_argv

from jepa_core.diskspace import folder_bytes, format_bytes
from vljepa.cli import main
from vljepa.training.checkpointing import CheckpointSaveError, complete_checkpoints

pytest_plugins = ["test_vljepa_kit"]  # shared fixtures: vl_tiny_st, one_torch_thread
pytestmark = pytest.mark.usefixtures("one_torch_thread")

ERRORS = {
    "oserror": lambda path: OSError(errno.ENOSPC, "No space left on device", str(path)),
    "safetensors": lambda path: SafetensorError(
        'Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: "No space left on device" })'
    ),
    "torch_save": lambda path: RuntimeError(
        "[enforce fail at inline_container.cc:664] . PytorchStreamWriter failed writing file data/0: file write failed"
    ),
}


@pytest.fixture
def models(tiny_timm, tiny_llama3, vl_tiny_st):
    return tiny_timm, tiny_llama3, vl_tiny_st


def fail_in(monkeypatch, folder_name: str, kind: str) -> None:
    """The writer of ``kind`` fails (half-way: a partial file is left) inside the folder named ``folder_name``."""
    if kind == "torch_save":
        module, attribute = torch, "save"
    else:  # model.safetensors goes through accelerate's safetensors writer; OSError injected there too
        module, attribute = accelerate_io, "safe_save_file"
    real = getattr(module, attribute)

    def writer(obj, f, *args, **kwargs):
        path = Path(str(f))
        if path.parent.name == folder_name:
            path.write_bytes(b"\0" * 64)
            raise ERRORS[kind](path)
        return real(obj, f, *args, **kwargs)

    monkeypatch.setattr(module, attribute, writer)


@pytest.mark.parametrize("kind", list(ERRORS))
def test_full_disk_at_the_writer(tmp_path, models, monkeypatch, kind):
    fail_in(monkeypatch, ".tmp-step-0000002", kind)
    argv = fast_argv(tmp_path, models)
    with pytest.raises(CheckpointSaveError) as info:
        main(argv)
    message = str(info.value)
    checkpoints = tmp_path / "run" / "checkpoints"
    previous = checkpoints / "step-0000001"
    assert f"could not write checkpoint {checkpoints / 'step-0000002'}" in message and "disk full" in message
    assert f"The partial folder {checkpoints / '.tmp-step-0000002'} was removed" in message
    assert f"free on the device holding {checkpoints}" in message
    assert f"a checkpoint needs about {format_bytes(folder_bytes(previous))}" in message
    assert f"previous checkpoint {previous} is intact" in message
    assert sorted(p.name for p in checkpoints.iterdir()) == ["step-0000001"]
    state = json.loads((previous / "trainer_state.json").read_text())
    assert state["global_step"] == 1 and complete_checkpoints(checkpoints) == [previous]
    if kind == "safetensors":  # space freed: the intact checkpoint resumes to the end
        monkeypatch.undo()
        torch.set_num_threads(1)
        assert main([*argv, "--resume", "true"]) == 0
        assert json.loads((tmp_path / "run" / "metrics.json").read_text())["train_steps"] == 6
