"""The training data order as a pure function: ``trained_pairs`` lists exactly what the micro-batches train on."""

from __future__ import annotations

import pytest
import torch

from vljepa.training.data import MicroBatches, TrainingStage, trained_pairs


def caption_like_stage(examples: int, epochs: float) -> TrainingStage:
    return TrainingStage(
        name="caption", dataset=None, queries=[f"q{i}" if i % 3 else "" for i in range(examples)],
        target_options=[[f"caption {i} a", f"caption {i} b", f"caption {i} c"] for i in range(examples)],
        image_rows=list(range(examples)), epochs=epochs,
    )  # fmt: skip


@pytest.mark.parametrize(("epochs", "processes"), [(1.0, 1), (2.5, 1), (1.75, 2)])
def test_trained_pairs_are_what_the_micro_batches_train_on(epochs, processes):
    stage, global_batch = caption_like_stage(21, epochs), 4
    count = stage.total_micro_batches(global_batch)
    seen = []
    for micro_step in range(count):
        for rank in range(processes):
            batches = MicroBatches(
                stage, stage_index=1, start=micro_step, stop=micro_step + 1, seed=7, global_batch_size=global_batch,
                process_index=rank, num_processes=processes, table=torch.zeros(21, 1, 2),
            )  # fmt: skip
            stage.image_slots = list(range(21))
            item = batches[0]
            seen.extend(zip(item["queries"], item["targets"]))
    pairs = trained_pairs(stage, seed=7, stage_index=1, micro_batches=count, global_batch_size=global_batch)
    assert pairs == seen and len(pairs) == count * global_batch
    assert len({target for _, target in pairs}) > 21 or epochs == 1.0  # later epochs draw other captions
