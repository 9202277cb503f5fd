"""Exact resume on the real bundled models (EfficientNet-Lite0, SmolLM2, MiniLM), with the default curriculum's
first recipe (captions, then questions; the second stage reads stage 1's model and has no caption stage).

The tiny-model resume tests train the Y-encoder; the default recipe freezes it, and a frozen Y-encoder
memoises target embeddings, whose last bits depend on the batch a text was first encoded in. Before the
trainer filled that memo up front, a run killed in the question stage and resumed ended with weights up to
8e-4 away from the uninterrupted run.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from test_vljepa_fault_tolerance import assert_same_tensors, sigkill_while_writing, tensors

from vljepa.cli import main
from vljepa.training.checkpointing import complete_checkpoints

ROOT = Path(__file__).resolve().parents[2]
RECIPE = ROOT / "recipes" / "vljepa" / "easyvqa-templates-effnet-minilm.yaml"


def short_default_recipe(tmp_path: Path, out: str) -> list[str]:
    """The curriculum's first recipe shortened: 240 rows per dataset, batch 16 -> 15 caption + 15 question steps,
    a checkpoint every 3 steps."""
    return ["train", str(RECIPE), "--max_train_samples", "240", "--per_device_train_batch_size", "16",
            "--caption_epochs", "1", "--query_epochs", "1", "--eval_task", "none", "--report_to", "none",
            "--save_steps", "3", "--save_total_limit", "20", "--logging_steps", "5",
            "--output_dir", str(tmp_path / out), "--feature_cache_dir", str(tmp_path / "cache")]  # fmt: skip


@pytest.mark.bundled
@pytest.mark.slow
def test_default_recipe_killed_in_the_question_stage_resumes_bit_identically(tmp_path):
    assert main(short_default_recipe(tmp_path, "uninterrupted")) == 0

    # SIGKILL while step 21 is being written: steps 1-15 are captions, 16-30 questions.
    argv = short_default_recipe(tmp_path, "killed")
    sigkill_while_writing(tmp_path, ".tmp-step-0000021", argv, timeout_s=180)
    checkpoints = tmp_path / "killed" / "checkpoints"
    assert complete_checkpoints(checkpoints)[-1].name == "step-0000018"

    assert main([*argv, "--resume", "true"]) == 0
    log = (tmp_path / "killed" / "train.log").read_text()
    assert f"Resumed from {checkpoints / 'step-0000018'}: step 18, stage 1" in log
    assert_same_tensors(tensors(tmp_path / "uninterrupted" / "model"), tensors(tmp_path / "killed" / "model"))
    for name in ("step-0000021", "step-0000030"):  # later checkpoints too
        assert_same_tensors(tensors(tmp_path / "uninterrupted" / "checkpoints" / name), tensors(checkpoints / name))
