"""Sharded evaluation: a 2-rank simulation (two threads exchanging shards) equals one process."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from eval.distributed import AccelerateShards, SingleProcess, gather_records, resolve_shards, shard_indices
from eval.runners import run_captioning, run_retrieval, run_vqa, run_zeroshot
from eval.testing import (
    COLOUR_NAMES,
    ColourModel,
    colour_captioning_dataset,
    colour_classification_dataset,
    colour_vqa_dataset,
)


class ShardExchange:
    """What ``torch.distributed.all_gather_object`` does, for ranks that are threads of one process."""

    def __init__(self, world_size: int) -> None:
        self.barrier = threading.Barrier(world_size, timeout=120)
        self.slots: list[list] = [[] for _ in range(world_size)]

    def all_gather(self, rank: int, items: list) -> list:
        self.slots[rank] = list(items)
        self.barrier.wait()
        gathered = [item for slot in self.slots for item in slot]
        self.barrier.wait()  # nobody overwrites a slot before every rank has read them all
        return gathered


class FakeRank:
    """A fake accelerator: process_index / num_processes and a gather that concatenates the shards."""

    def __init__(self, rank: int, world_size: int, exchange: ShardExchange) -> None:
        self.process_index = rank
        self.num_processes = world_size
        self.is_main_process = rank == 0
        self.exchange = exchange

    def gather_object(self, items: list) -> list:
        return self.exchange.all_gather(self.process_index, items)


def run_on_ranks(run, world_size: int, tmp_path) -> list[dict]:
    exchange = ShardExchange(world_size)
    with ThreadPoolExecutor(world_size) as pool:
        futures = [
            pool.submit(run, FakeRank(rank, world_size, exchange), tmp_path / f"rank{rank}")
            for rank in range(world_size)
        ]
        return [future.result() for future in futures]


TASKS = {
    "retrieval": lambda acc, out: run_retrieval(
        ColourModel(), colour_captioning_dataset(9), output_dir=out, batch_size=2, accelerator=acc
    ),
    "vqa": lambda acc, out: run_vqa(
        ColourModel(),
        colour_vqa_dataset(9, with_candidates=False),
        output_dir=out,
        batch_size=2,
        accelerator=acc,
    ),
    "zeroshot": lambda acc, out: run_zeroshot(
        ColourModel(),
        colour_classification_dataset(9),
        output_dir=out,
        class_names=COLOUR_NAMES,
        batch_size=2,
        accelerator=acc,
    ),
    "captioning": lambda acc, out: run_captioning(
        ColourModel(), colour_captioning_dataset(9), output_dir=out, batch_size=2, accelerator=acc
    ),
}


@pytest.mark.parametrize("task", sorted(TASKS))
def test_two_ranks_equal_one_process_on_a_ragged_dataset(task, tmp_path):
    run = TASKS[task]
    single = run(None, tmp_path / "single")
    rank0, rank1 = run_on_ranks(run, 2, tmp_path)
    assert rank0 == single and rank1 == single
    # Only the main process writes, and it writes the same predictions as one process.
    assert not (tmp_path / "rank1").exists()
    single_lines = (tmp_path / "single" / "predictions.jsonl").read_text()
    assert (tmp_path / "rank0" / "predictions.jsonl").read_text() == single_lines


def test_shards_cover_every_index_once():
    shards = [shard_indices(9, FakeRank(rank, 2, ShardExchange(1))) for rank in range(2)]
    assert shards == [[0, 2, 4, 6, 8], [1, 3, 5, 7]]
    assert shard_indices(2, FakeRank(2, 3, ShardExchange(1))) == []


def test_gather_records_deduplicates_and_reports_missing_examples():
    class RepeatingGather(SingleProcess):
        def gather_object(self, items):  # like a padded gather that repeats the first records
            return list(items) + list(items[:2])

    records = [{"index": i, "value": i * 10} for i in (2, 0, 1)]
    gathered = gather_records(records, RepeatingGather(), 3)
    assert [r["index"] for r in gathered] == [0, 1, 2]
    with pytest.raises(RuntimeError, match=r"first: \[3\]"):
        gather_records(records, SingleProcess(), 4)


def test_resolve_shards():
    assert isinstance(resolve_shards(None), SingleProcess)
    fake = FakeRank(1, 2, ShardExchange(2))
    assert resolve_shards(fake) is fake
    with pytest.raises(TypeError, match="gather_object"):
        resolve_shards(object())
    with pytest.raises(ValueError, match="out of range"):
        resolve_shards(FakeRank(2, 2, ShardExchange(2)))


def test_accelerate_state_is_wrapped():
    from accelerate import PartialState

    already_initialized = PartialState._shared_state != {}
    try:
        shards = resolve_shards(PartialState())
        assert isinstance(shards, AccelerateShards)
        assert shards.num_processes == 1 and shards.is_main_process
        assert shards.gather_object([{"index": 0}]) == [{"index": 0}]
    finally:
        if not already_initialized:  # leave the process-wide singleton as we found it
            PartialState._reset_state()


def test_each_rank_evaluates_only_its_shard(tmp_path):
    class CountingModel(ColourModel):
        def __init__(self):
            super().__init__()
            self.questions: list[str] = []

        def answer_scores(self, images, questions, candidates, *, batch_size=32):
            self.questions.extend(questions)
            return super().answer_scores(images, questions, candidates, batch_size=batch_size)

    rows = colour_vqa_dataset(9)
    for index, row in enumerate(rows):
        row["question"] = f"question {index}"
    models = [CountingModel(), CountingModel()]
    run_on_ranks(
        lambda acc, out: run_vqa(
            models[acc.process_index], rows, output_dir=out, batch_size=2, accelerator=acc
        ),
        2,
        tmp_path,
    )
    assert models[0].questions == [f"question {i}" for i in (0, 2, 4, 6, 8)]
    assert models[1].questions == [f"question {i}" for i in (1, 3, 5, 7)]


LAUNCHED_SCRIPT = """
import json, sys
from accelerate import Accelerator
from eval.runners import run_vqa
from eval.testing import ColourModel, colour_vqa_dataset

accelerator = Accelerator(cpu=True)
rows = colour_vqa_dataset(9)
metrics = run_vqa(ColourModel(), rows, output_dir=sys.argv[1], batch_size=2, accelerator=accelerator)
with open(f"{sys.argv[1]}.rank{accelerator.process_index}.json", "w") as handle:
    json.dump({"metrics": metrics, "num_processes": accelerator.num_processes}, handle)
# Leave together: a rank that exits while the other is still inside a gloo collective aborts
# ("terminate called without an active exception"; seen once in a fresh-clone CI run).
accelerator.wait_for_everyone()
import torch.distributed
torch.distributed.destroy_process_group()
"""


@pytest.mark.multiprocess
@pytest.mark.slow  # two fresh Python processes importing torch: ~40 s on 2 busy CPU cores
def test_two_real_processes_with_accelerate(tmp_path):
    """torchrun + Accelerator(cpu=True): gather_object over gloo, ragged shards, one writer."""
    script = tmp_path / "evaluate.py"
    script.write_text(LAUNCHED_SCRIPT)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2"]
    command += ["--master_addr", "127.0.0.1", "--master_port", str(port), str(script), str(tmp_path / "out")]
    result = subprocess.run(command, check=False, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    single = run_vqa(ColourModel(), colour_vqa_dataset(9), output_dir=tmp_path / "single", batch_size=2)
    for rank in range(2):
        launched = json.loads((tmp_path / f"out.rank{rank}.json").read_text())
        assert launched["num_processes"] == 2
        assert launched["metrics"] == single
    written = (tmp_path / "out" / "predictions.jsonl").read_text()
    assert written == (tmp_path / "single" / "predictions.jsonl").read_text()
