"""Launch checks shared by both trainers.

``accelerate launch`` on a machine without a GPU starts its workers through torchrun (see
``recipes/accelerate/cpu-2proc.yaml``), but accelerate only joins them into one gloo process group when it is
told to run on the CPU. Without that, every worker trains alone on the whole data, writing to the same
output folder: the worst kind of silent failure. These helpers choose the CPU when no accelerator is present
and refuse a launch whose process count does not match the one torchrun announced.
"""

from __future__ import annotations

import os

import torch


def accelerator_available() -> bool:
    """Whether torch sees a CUDA, XPU or MPS device."""
    if torch.cuda.is_available():
        return True
    xpu = getattr(torch, "xpu", None)
    if xpu is not None and xpu.is_available():
        return True
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def resolve_use_cpu(use_cpu: bool | None) -> bool:
    """``use_cpu`` as configured, or (``None``) the CPU exactly when no accelerator device is present."""
    return (not accelerator_available()) if use_cpu is None else bool(use_cpu)


def launched_world_size() -> int:
    """The process count torchrun / mpirun announced in the environment (1 for a plain process)."""
    for name in ("WORLD_SIZE", "OMPI_COMM_WORLD_SIZE", "PMI_SIZE"):
        value = os.environ.get(name)
        if value:
            return int(value)
    return 1


def check_world_size(num_processes: int, *, hint: str = "pass --use_cpu true") -> None:
    """Raise when the launcher started N processes but the trainer's process group holds a different number."""
    launched = launched_world_size()
    if launched != num_processes:
        raise RuntimeError(
            f"the launcher started {launched} processes (WORLD_SIZE={launched}) but accelerate set up "
            f"{num_processes}: each process would train alone and they would overwrite each other's output. "
            f"On a machine without a GPU, {hint} so that accelerate joins them with the gloo backend."
        )
