"""Sharding an evaluation over processes and gathering the per-example results.

Each process takes a strided shard of the example indices (``process_index, process_index + P, ...``),
computes one record per example (a dict with an ``"index"`` key), and the records of all processes are
gathered and de-duplicated by index. Gathering objects (not padded tensors) means the ragged end of the
dataset is neither dropped nor counted twice; de-duplicating also makes the result correct if a
gather ever repeats records.

Any object with ``process_index``, ``num_processes``, ``is_main_process`` and
``gather_object(list) -> list`` is a :class:`ShardContext`; an ``accelerate.Accelerator`` (or
``PartialState``) is wrapped by :func:`resolve_shards` so that it gathers with
``accelerate.utils.gather_object``.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import torch


@runtime_checkable
class ShardContext(Protocol):
    """Who this process is among ``num_processes``, and how to gather Python objects from all of them."""

    process_index: int
    num_processes: int
    is_main_process: bool

    def gather_object(self, items: list[Any]) -> list[Any]:
        """The concatenation, in process order, of every process's ``items`` (on every process)."""
        ...


class SingleProcess:
    """The :class:`ShardContext` of a plain, single-process evaluation."""

    process_index = 0
    num_processes = 1
    is_main_process = True
    device = torch.device("cpu")

    def gather_object(self, items: list[Any]) -> list[Any]:
        return list(items)


class AccelerateShards:
    """Adapts an ``accelerate.Accelerator`` or ``PartialState`` to :class:`ShardContext`."""

    def __init__(self, accelerator: Any) -> None:
        self.accelerator = accelerator
        self.process_index = int(accelerator.process_index)
        self.num_processes = int(accelerator.num_processes)
        self.is_main_process = bool(accelerator.is_main_process)
        self.device = torch.device(accelerator.device)

    def gather_object(self, items: list[Any]) -> list[Any]:
        from accelerate.utils import gather_object

        return list(gather_object(list(items)))


def resolve_shards(accelerator: Any | None) -> ShardContext:
    """``None`` -> :class:`SingleProcess`; a :class:`ShardContext` as is; an Accelerate object wrapped."""
    if accelerator is None:
        return SingleProcess()
    if isinstance(accelerator, ShardContext):
        shards = accelerator
    else:
        from accelerate import Accelerator, PartialState

        if not isinstance(accelerator, (Accelerator, PartialState)):
            raise TypeError(
                "accelerator must be None, an accelerate.Accelerator / PartialState, or an object with "
                "process_index, num_processes, is_main_process and gather_object(); "
                f"got {type(accelerator).__name__}"
            )
        shards = AccelerateShards(accelerator)
    if not 0 <= shards.process_index < shards.num_processes:
        raise ValueError(
            f"process_index {shards.process_index} is out of range for num_processes {shards.num_processes}"
        )
    return shards


def shard_device(shards: ShardContext) -> torch.device:
    """Where this process computes metrics: the Accelerate device, else the CPU."""
    return torch.device(getattr(shards, "device", "cpu"))


def shard_indices(num_examples: int, shards: ShardContext) -> list[int]:
    """This process's strided share of ``range(num_examples)``."""
    return list(range(shards.process_index, num_examples, shards.num_processes))


def gather_records(
    records: list[dict[str, Any]], shards: ShardContext, num_examples: int
) -> list[dict[str, Any]]:
    """All processes' records, one per example index, ordered by index.

    Raises ``RuntimeError`` naming the missing indices if some example was never evaluated.
    """
    by_index: dict[int, dict[str, Any]] = {}
    for record in shards.gather_object(records):
        by_index.setdefault(int(record["index"]), record)
    missing = sorted(set(range(num_examples)) - by_index.keys())
    if missing:
        raise RuntimeError(
            f"{len(missing)} example(s) were evaluated by no process (first: {missing[:10]}); "
            "every process must run the evaluation on the same dataset"
        )
    unexpected = sorted(set(by_index) - set(range(num_examples)))
    if unexpected:
        raise RuntimeError(f"gathered records for indices outside the dataset: {unexpected[:10]}")
    return [by_index[index] for index in range(num_examples)]
