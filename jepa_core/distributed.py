"""Launch checks shared by both trainers.

``accelerate launch`` on a machine without a GPU starts its workers through torchrun (see
``recipes/accelerate/cpu-2proc.yaml``), but accelerate only joins them into one gloo process group when it is
told to run on the CPU. Without that, every worker trains alone on the whole data, writing to the same
output folder: the worst kind of silent failure. These helpers choose the CPU when no accelerator is present
and refuse a launch whose process count does not match the one torchrun announced.

Contrastive losses whose negatives span the global batch (VL-JEPA's and LLM-JEPA's InfoNCE) call
:func:`gather_global_batch`: every process computes the loss of the whole global batch with gradients flowing
to its own rows only, scaled by the world size so that DDP's gradient average equals the one-process gradient.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import torch

GatherFn = Callable[[torch.Tensor], torch.Tensor]


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


def gather_with_local_grad(tensor: torch.Tensor, gather_fn: GatherFn, rank: int) -> torch.Tensor:
    """Concatenate ``tensor`` from all processes; gradients flow to this process's own rows only.

    ``gather_fn`` gathers along dim 0 without gradient (e.g. ``accelerator.gather``); every process must
    hold the same number of rows.
    """
    gathered = gather_fn(tensor.detach().contiguous())
    if gathered.shape[0] % tensor.shape[0]:
        raise ValueError(
            f"gathered {gathered.shape[0]} rows from a local batch of {tensor.shape[0]}: every process must use "
            "the same per-device batch size (drop the last incomplete batch)"
        )
    world = gathered.shape[0] // tensor.shape[0]
    if not 0 <= rank < world:
        raise ValueError(f"rank {rank} out of range for {world} processes")
    chunks = list(gathered.split(tensor.shape[0]))
    chunks[rank] = tensor
    return torch.cat(chunks)


def scale_gradient(tensor: torch.Tensor, factor: float) -> torch.Tensor:
    """``tensor`` with the same values (exactly) and its gradient multiplied by ``factor``."""
    if factor == 1:
        return tensor
    return tensor + (factor - 1) * (tensor - tensor.detach())


def gather_global_batch(
    predictions: torch.Tensor, targets: torch.Tensor, gather_fn: GatherFn, rank: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``[world x B, D]`` predictions and targets of all processes, for a contrastive loss.

    Gradients flow back through this process's own rows only, scaled by the world size: each process
    back-propagates the global loss through its rows, and DDP then averages the gradients over processes, so
    the scaling makes that average the one-process gradient of the global batch (parameters used whole on
    every process, such as a temperature, already get the full gradient everywhere).
    """
    local_rows = predictions.shape[0]
    predictions = gather_with_local_grad(predictions, gather_fn, rank)
    targets = gather_with_local_grad(targets, gather_fn, rank)
    world_size = predictions.shape[0] // local_rows
    return scale_gradient(predictions, world_size), scale_gradient(targets, world_size)
