"""A full disk during an LLM-JEPA checkpoint, as each writer reports it (OSError ENOSPC, SafetensorError from the
adapter's safetensors writer, RuntimeError from torch.save of the optimizer): the partial folder is removed, the
last good checkpoint stays intact, and the error names the folder and the space needed. Any other write error
is a CheckpointSaveError, also after cleaning up."""

from __future__ import annotations

import errno
from pathlib import Path

import peft.peft_model
import pytest
import torch
from safetensors import SafetensorError
from test_llm_jepa_fault_tolerance import _resume_to_end, _trainer

from jepa_core.diskspace import CheckpointSaveError, folder_bytes, format_bytes

ERRORS = {
    "oserror": OSError(errno.ENOSPC, "No space left on device"),
    "safetensors": SafetensorError(
        'Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: "No space left on device" })'
    ),
    "torch_save": RuntimeError("PytorchStreamWriter failed writing file data/0: file write failed"),
}


def fail_in(monkeypatch, folder_name: str, error: Exception, *, writer: str) -> None:
    module, attribute = (torch, "save") if writer == "torch" else (peft.peft_model, "safe_save_file")
    real = getattr(module, attribute)

    def write(obj, f, *args, **kwargs):
        path = Path(str(f))
        if path.parent.parent.name == folder_name:  # _tmp-checkpoint-N/checkpoint-N/<file>
            path.write_bytes(b"\0" * 64)
            raise error
        return real(obj, f, *args, **kwargs)

    monkeypatch.setattr(module, attribute, write)


@pytest.mark.parametrize("kind", list(ERRORS))
def test_full_disk_at_the_writer(tiny_llama3, tmp_path, monkeypatch, kind):
    trainer = _trainer(tiny_llama3, tmp_path, save_strategy="steps", save_steps=1, save_total_limit=2)
    fail_in(monkeypatch, "_tmp-checkpoint-2", ERRORS[kind], writer="torch" if kind == "torch_save" else "safetensors")
    run = tmp_path / "run"
    with pytest.raises(OSError) as info:
        trainer.train()
    message = str(info.value)
    assert info.value.errno == errno.ENOSPC and "no space left on device while saving checkpoint" in message
    assert str(run / "checkpoint-2") in message and f"partial folder {run / '_tmp-checkpoint-2'} was removed" in message
    assert f"previous checkpoint {run / 'checkpoint-1'} is intact" in message
    assert f"a checkpoint needs about {format_bytes(folder_bytes(run / 'checkpoint-1'))}" in message
    assert f"free on the device holding {run}" in message
    assert sorted(p.name for p in run.iterdir() if "checkpoint" in p.name) == ["checkpoint-1"]
    if kind == "safetensors":
        monkeypatch.undo()
        assert _resume_to_end(tiny_llama3, tmp_path) == ["checkpoint-2", "checkpoint-3"]


def test_other_write_errors_clean_up_too(tiny_llama3, tmp_path, monkeypatch):
    trainer = _trainer(tiny_llama3, tmp_path, save_strategy="steps", save_steps=1, save_total_limit=2)
    fail_in(monkeypatch, "_tmp-checkpoint-2", RuntimeError("serialization bug"), writer="torch")
    monkeypatch.setattr("jepa_core.diskspace.free_bytes", lambda path: 10**15)
    monkeypatch.setattr("llm_jepa.trainer.free_bytes", lambda path: 10**15)
    run = tmp_path / "run"
    with pytest.raises(CheckpointSaveError, match="serialization bug") as info:
        trainer.train()
    assert f"could not write checkpoint {run / 'checkpoint-2'}" in str(info.value)
    assert sorted(p.name for p in run.iterdir() if "checkpoint" in p.name) == ["checkpoint-1"]
