"""Checkpoints of :class:`vljepa.training.trainer.VLJEPATrainer`: atomic, rotated, resumable.

A checkpoint is ``<root>/step-NNNNNNN/``: Accelerate's state (model without its frozen pretrained parts,
optimizer, scheduler, RNG states) plus ``trainer_state.json`` (step and data position). It is written into
``.tmp-step-NNNNNNN/`` and renamed into place only once every process has written its part and the state file
exists, so a kill during a save never leaves a folder that looks complete, and the previous checkpoint
survives. A failed save (a full disk, reported by the writers as ``OSError``, ``SafetensorError`` or
``RuntimeError``, or any other error) removes the partial folder and raises :class:`CheckpointSaveError` naming
the folder, the intact previous checkpoint, and the free space against the size a checkpoint needs.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator

from jepa_core.config import ConfigError
from jepa_core.diskspace import CheckpointSaveError, folder_bytes, is_disk_full, space_report, tensor_bytes
from jepa_core.rundir import write_json

logger = logging.getLogger(__name__)

STATE_FILE = "trainer_state.json"
__all__ = ["CheckpointSaveError", "Checkpoints", "NoCheckpointError", "OutputDirInUseError", "any_process",
           "check_output_dir", "complete_checkpoints"]


class OutputDirInUseError(FileExistsError, ConfigError):
    """``output_dir`` holds another run (checkpoints or a saved model) and ``resume`` was not asked for."""


class NoCheckpointError(FileNotFoundError, ConfigError):
    """``resume`` was asked for but ``output_dir`` holds no complete checkpoint."""


def check_output_dir(output_dir: str | Path, *, resume: bool) -> None:
    """Refuse, before anything is written, a run that would overwrite another run's folder.

    Without ``resume``, a folder holding checkpoints or a saved ``model/`` belongs to another run: its
    ``config.yaml``, ``run_info.json``, log and weights must stay as they are. With ``resume``, there must be a
    complete checkpoint to continue from.
    """
    output_dir = Path(output_dir)
    checkpoints = complete_checkpoints(output_dir / "checkpoints")
    if resume:
        if not checkpoints:
            raise NoCheckpointError(f"--resume: no complete checkpoint in {output_dir / 'checkpoints'}")
        return
    holds = ("checkpoints" if checkpoints else
             "a trained model (model/config.json)" if (output_dir / "model" / "config.json").is_file() else None)
    if holds:
        raise OutputDirInUseError(
            f"{output_dir} already holds {holds} of another run; nothing was written. Pass --resume to continue "
            "that run, or choose another output_dir"
        )


def complete_checkpoints(checkpoint_root: Path) -> list[Path]:
    """Checkpoint folders holding a state file, oldest first (temporary folders are ignored)."""
    if not checkpoint_root.is_dir():
        return []
    found = [p for p in checkpoint_root.glob("step-*") if (p / STATE_FILE).is_file()]
    return sorted(found, key=lambda p: int(p.name.split("-")[1]))


def any_process(accelerator: Accelerator, flag: torch.Tensor | bool) -> bool:
    """True on every process when ``flag`` is true on any (a collective call: every process must make it)."""
    value = torch.as_tensor(flag).to(accelerator.device, torch.float32).reshape(1)
    return bool(accelerator.reduce(value, reduction="sum").item() > 0)


class Checkpoints:
    """The checkpoint folder of one run.

    Args:
        accelerator: the run's Accelerator (its ``save_state`` / ``load_state`` do the tensor I/O).
        root: ``<output_dir>/checkpoints``.
        save_total_limit: how many complete checkpoints to keep (the newest).
    """

    def __init__(self, accelerator: Accelerator, root: Path, *, save_total_limit: int) -> None:
        self.accelerator = accelerator
        self.root = root
        self.save_total_limit = save_total_limit

    def latest_name(self) -> str | None:
        checkpoints = complete_checkpoints(self.root)
        return str(checkpoints[-1]) if checkpoints else None

    def skip_frozen_weights(self, prefixes: Sequence[str]) -> None:
        """Leave parameters under ``prefixes`` (frozen pretrained parts, rebuilt from their ids) out of saves."""
        prefixes = tuple(prefixes)

        def drop_frozen(models, weights, output_dir):
            for i, state in enumerate(weights):
                weights[i] = {k: v for k, v in state.items() if not k.removeprefix("module.").startswith(prefixes)}

        self.accelerator.register_save_state_pre_hook(drop_frozen)

    def save(self, state: dict[str, Any]) -> None:
        """Write ``step-<state["global_step"]>`` atomically (a no-op when it exists), then rotate old ones."""
        accelerator = self.accelerator
        step = state["global_step"]
        name = f"step-{step:07d}"
        final, tmp = self.root / name, self.root / f".tmp-{name}"
        if final.exists():
            return
        if accelerator.is_main_process:
            shutil.rmtree(tmp, ignore_errors=True)
        accelerator.wait_for_everyone()
        error: Exception | None = None
        try:
            accelerator.save_state(str(tmp))
        except Exception as err:  # noqa: BLE001 (a full disk comes as OSError, SafetensorError or RuntimeError)
            error = err
        failed = any_process(accelerator, error is not None)  # also a barrier: every process wrote its part
        if not failed and accelerator.is_main_process:
            try:
                write_json(tmp / STATE_FILE, {**state, "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S")})
            except Exception as err:  # noqa: BLE001 (re-raised by _abandon)
                error = err
        if failed or any_process(accelerator, error is not None):
            self._abandon(final, tmp, step, error)
        if accelerator.is_main_process:
            os.replace(tmp, final)
            for old in complete_checkpoints(self.root)[: -self.save_total_limit]:
                doomed = old.with_name(f".deleting-{old.name}")
                os.replace(old, doomed)
                shutil.rmtree(doomed, ignore_errors=True)
            logger.info("Checkpoint written: %s", final)
        accelerator.wait_for_everyone()

    def needed_bytes(self) -> int:
        """Size of a checkpoint: the newest complete one, else the tensors of the models and optimizers."""
        previous = self.latest_name()
        if previous is not None:
            return folder_bytes(previous)
        return tensor_bytes([*self.accelerator._models, *self.accelerator._optimizers])

    def _abandon(self, final: Path, tmp: Path, step: int, error: Exception | None) -> None:
        """Remove the partial ``tmp`` folder of a failed save and raise :class:`CheckpointSaveError`."""
        if self.accelerator.is_main_process:
            shutil.rmtree(tmp, ignore_errors=True)
        self.accelerator.wait_for_everyone()
        needed = self.needed_bytes()
        if error is None:
            reason = "another process could not write its part"
        else:
            kind = "disk full: " if is_disk_full(error) else ""
            reason = f"{kind}{type(error).__name__}: {error}"
        previous = self.latest_name()
        intact = (f"The previous checkpoint {previous} is intact: free some space (or choose another output_dir "
                  "and copy it there) and continue with --resume true."
                  if previous else "There is no earlier checkpoint: free some space and start the run again.")
        raise CheckpointSaveError(
            f"could not write checkpoint {final} at optimizer step {step}: {reason}. The partial "
            f"folder {tmp} was removed. {space_report(self.root, needed)} {intact}"
        ) from error

    def resume(self, resume: bool) -> tuple[Path, dict[str, Any]] | None:
        """With ``resume``, load the latest complete checkpoint into the Accelerator and return its folder and
        state; without, refuse a folder that already holds checkpoints (return None when it holds none)."""
        checkpoints = complete_checkpoints(self.root)
        if not resume:
            if checkpoints:
                raise FileExistsError(
                    f"{self.root} already holds checkpoints; pass --resume to continue that run or "
                    "choose another output_dir"
                )
            return None
        if not checkpoints:
            raise FileNotFoundError(f"--resume: no complete checkpoint in {self.root}")
        latest = checkpoints[-1]
        self.accelerator.load_state(str(latest), strict=False)
        return latest, json.loads((latest / STATE_FILE).read_text())
