"""Fault tolerance of the VL-JEPA trainer: non-finite losses, a full disk during a checkpoint save, a SIGKILL
followed by an exact resume, 2-process gradients equal to 1 process, and collapse monitoring."""

from __future__ import annotations

import errno
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from accelerate import Accelerator
from safetensors.torch import load_file
from test_vljepa_training import trainer_argv

from jepa_core.monitoring import NonFiniteLossError
from vljepa.cli import main
from vljepa.modeling import VLJEPAModel
from vljepa.training.checkpointing import CheckpointSaveError, complete_checkpoints

pytest_plugins = ["test_vljepa_kit"]  # shared fixtures: vl_tiny_st, one_torch_thread
pytestmark = pytest.mark.usefixtures("one_torch_thread")

ROOT = Path(__file__).resolve().parents[2]


def fast_argv(tmp_path: Path, models: tuple, *extra: str, out: str = "run") -> list[str]:
    """A small run without evaluation: 3 caption steps + 3 query steps, a checkpoint after every step."""
    return trainer_argv(
        tmp_path / out, tmp_path / "cache", *models, "--eval_task", "none", "--save_steps", "1",
        "--query_dataset_kwargs", '{"num_images": 4, "use_cache": false}', *extra,
    )  # fmt: skip


@pytest.fixture
def models(tiny_timm, tiny_llama3, vl_tiny_st):
    return tiny_timm, tiny_llama3, vl_tiny_st


def nan_loss_at_call(monkeypatch, call: int) -> None:
    """The training loss of the ``call``-th forward (1-based; one per optimizer step here) becomes NaN."""
    real, calls = VLJEPAModel.forward, []

    def forward(self, *args, **kwargs):
        output = real(self, *args, **kwargs)
        calls.append(1)
        if len(calls) == call:
            output.loss = output.loss * float("nan")
        return output

    monkeypatch.setattr(VLJEPAModel, "forward", forward)


def tensors(path: Path) -> dict[str, torch.Tensor]:
    return load_file(path / "model.safetensors")


def assert_same_tensors(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key, value in a.items():
        assert torch.equal(value, b[key]), key


def optimizer_state(checkpoint: Path) -> dict:
    return torch.load(checkpoint / "optimizer.bin", weights_only=True)["state"]


# ----------------------------------------------------------------------------------------------------------
def test_nonfinite_loss_stops_with_the_step_and_keeps_the_last_checkpoint(tmp_path, models, monkeypatch):
    nan_loss_at_call(monkeypatch, 3)
    with pytest.raises(NonFiniteLossError, match=r"optimizer step 3 of the 'caption' stage") as info:
        main(fast_argv(tmp_path, models))
    assert "step-0000002) is untouched" in str(info.value) and "--resume true" in str(info.value)
    assert "on_nonfinite_loss: skip" in str(info.value)
    checkpoints = tmp_path / "run" / "checkpoints"
    assert [c.name for c in complete_checkpoints(checkpoints)] == ["step-0000001", "step-0000002"]
    assert sorted(p.name for p in checkpoints.iterdir()) == ["step-0000001", "step-0000002"]


def test_nonfinite_loss_skip_leaves_parameters_and_optimizer_unchanged(tmp_path, models, monkeypatch):
    nan_loss_at_call(monkeypatch, 2)
    assert main(fast_argv(tmp_path, models, "--on_nonfinite_loss", "skip", "--monitor_collapse", "false")) == 0
    run = tmp_path / "run"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["skipped_nonfinite_steps"] == 1 and metrics["train_steps"] == 6
    step = {c.name: c for c in complete_checkpoints(run / "checkpoints")}
    assert_same_tensors(tensors(step["step-0000001"]), tensors(step["step-0000002"]))
    before, after = optimizer_state(step["step-0000001"]), optimizer_state(step["step-0000002"])
    assert before.keys() == after.keys()
    for index in before:
        for name in ("step", "exp_avg", "exp_avg_sq"):
            assert torch.equal(before[index][name], after[index][name]), (index, name)
    later = tensors(step["step-0000003"])  # training goes on after the skipped step
    assert any(not torch.equal(later[k], v) for k, v in tensors(step["step-0000002"]).items())
    state = json.loads((step["step-0000003"] / "trainer_state.json").read_text())
    assert state["skipped_nonfinite_steps"] == 1 and state["micro_step"] == 3
    log = (run / "train.log").read_text()
    assert "Non-finite training loss at optimizer step 2 (caption stage): skipped" in log
    assert "collapse/" not in log and "pred/rankme" not in log  # monitor_collapse: false


def test_full_disk_during_a_save_keeps_the_previous_checkpoint(tmp_path, models, monkeypatch):
    real, calls = Accelerator.save_state, []

    def save_state(self, output_dir=None, **kwargs):
        calls.append(output_dir)
        if len(calls) == 2:  # the disk fills up half-way through the second checkpoint
            Path(output_dir).mkdir(parents=True)
            (Path(output_dir) / "model.safetensors").write_bytes(b"\0" * 100)
            raise OSError(errno.ENOSPC, "No space left on device", str(Path(output_dir) / "optimizer.bin"))
        return real(self, output_dir, **kwargs)

    monkeypatch.setattr(Accelerator, "save_state", save_state)
    argv = fast_argv(tmp_path, models)
    with pytest.raises(CheckpointSaveError) as info:
        main(argv)
    message = str(info.value)
    checkpoints = tmp_path / "run" / "checkpoints"
    assert f"could not write checkpoint {checkpoints / 'step-0000002'}" in message
    assert "No space left on device" in message
    assert f"previous checkpoint {checkpoints / 'step-0000001'} is intact" in message
    assert sorted(p.name for p in checkpoints.iterdir()) == ["step-0000001"]  # the partial folder is gone

    monkeypatch.setattr(Accelerator, "save_state", real)  # space freed: resume from step 1 to the end
    assert main([*argv, "--resume", "true"]) == 0
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["train_steps"] == 6
    assert f"Resumed from {checkpoints / 'step-0000001'}: step 1" in (tmp_path / "run" / "train.log").read_text()


KILLABLE = """
import sys, time
from pathlib import Path

from accelerate import Accelerator

real = Accelerator.save_state


def save_state(self, output_dir=None, **kwargs):  # hangs inside the save of one checkpoint, to be killed there
    result = real(self, output_dir, **kwargs)
    if Path(output_dir).name == sys.argv[1]:
        Path(sys.argv[2]).touch()
        time.sleep(600)
    return result


Accelerator.save_state = save_state
from vljepa.cli import main  # noqa: E402

sys.exit(main(sys.argv[3:]))
"""

def sigkill_while_writing(tmp_path: Path, staging_name: str, argv: list[str], *, timeout_s: float) -> None:
    """Run ``vljepa train argv`` in a subprocess, pause it while it writes ``staging_name``, then SIGKILL it."""
    script, paused = tmp_path / "killable.py", tmp_path / "paused"
    script.write_text(KILLABLE)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen([sys.executable, str(script), staging_name, str(paused), *argv], cwd=ROOT,
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + timeout_s
        while not paused.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert paused.exists(), process.stderr.read()[-3000:] if process.poll() is not None else "timed out"
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
        process.stderr.close()
    assert process.returncode == -signal.SIGKILL



@pytest.mark.slow
def test_sigkill_mid_save_then_resume_is_bit_identical(tmp_path, models):
    """`vljepa train` killed (SIGKILL) while writing step 4, after step 3 was complete, resumes from step 3 and
    ends with the same tensors, bit for bit, as an uninterrupted run (same seed, same data order)."""
    assert main(fast_argv(tmp_path, models, out="uninterrupted")) == 0

    argv = fast_argv(tmp_path, models, out="killed")
    sigkill_while_writing(tmp_path, ".tmp-step-0000004", argv, timeout_s=120)
    checkpoints = tmp_path / "killed" / "checkpoints"
    assert [c.name for c in complete_checkpoints(checkpoints)] == ["step-0000001", "step-0000002", "step-0000003"]
    leftover = checkpoints / ".tmp-step-0000004"
    assert (leftover / "model.safetensors").is_file()  # a kill during the save: a partial folder remains
    # Even a complete-looking leftover (killed between the state file and the rename) is ignored by resume.
    (leftover / "trainer_state.json").write_text((checkpoints / "step-0000003" / "trainer_state.json").read_text())
    assert not (tmp_path / "killed" / "model").exists()

    assert main([*argv, "--resume", "true"]) == 0
    assert f"Resumed from {checkpoints / 'step-0000003'}: step 3" in (tmp_path / "killed" / "train.log").read_text()
    assert not any(p.name.startswith(".") for p in checkpoints.iterdir())
    assert_same_tensors(tensors(tmp_path / "uninterrupted" / "model"), tensors(tmp_path / "killed" / "model"))
    for name in ("step-0000004", "step-0000006"):  # later checkpoints too (model, optimizer)
        assert_same_tensors(tensors(tmp_path / "uninterrupted" / "checkpoints" / name), tensors(checkpoints / name))


# ----------------------------------------------------------------------------------------------------------
def test_collapse_monitoring_logs_statistics_and_warns_once(tmp_path, models, monkeypatch):
    real_forward, real_log, logged = VLJEPAModel.forward, Accelerator.log, []

    def constant_predictions(self, *args, **kwargs):  # a collapsed predictor (the loss is left as it is)
        output = real_forward(self, *args, **kwargs)
        output.predicted_embeddings = torch.ones_like(output.predicted_embeddings)
        return output

    def log(self, values, step=None, **kwargs):
        logged.append(dict(values))
        return real_log(self, values, step=step, **kwargs)

    monkeypatch.setattr(VLJEPAModel, "forward", constant_predictions)
    monkeypatch.setattr(Accelerator, "log", log)
    argv = fast_argv(tmp_path, models, "--save_steps", "0", "--collapse_min_vectors", "16",
                     "--collapse_buffer_size", "64")
    assert main(argv) == 0
    steps = [values for values in logged if "train/loss" in values]
    assert len(steps) == 6
    for stream in ("pred", "target"):
        for stat in ("std_mean", "std_min", "rankme", "cosine_mean", "collapsed"):
            assert f"collapse/{stream}/{stat}" in steps[-1], (stream, stat)
    assert "collapse/target/num_vectors" not in steps[0] or steps[0]["collapse/target/num_vectors"] == 8
    assert steps[0]["collapse/pred/collapsed"] == 0.0  # 8 vectors < collapse_min_vectors: no verdict yet
    assert steps[-1]["collapse/pred/collapsed"] == 1.0 and steps[-1]["collapse/pred/cosine_mean"] > 0.999
    assert steps[-1]["collapse/target/collapsed"] == 0.0
    log_text = (tmp_path / "run" / "train.log").read_text()
    assert log_text.count("Possible representation collapse in 'pred'") == 1
    assert "Possible representation collapse in 'target'" not in log_text
    assert "pred/rankme=" in log_text and "target/std_mean=" in log_text


# ----------------------------------------------------------------------------------------------------------
TWO_RANK_STEP = """
import sys

import torch
from accelerate import Accelerator
from PIL import Image
from safetensors.torch import save_file

from vljepa.training.trainer import build_model, global_negatives
from vljepa.training.arguments import VLJEPAModelArguments

COLOURS = ["red", "blue", "green", "yellow", "black", "white", "purple", "red"]  # two samples share a target


def first_step(accelerator, out: str, vision: str, llm: str, st: str) -> None:
    torch.manual_seed(0)
    model = build_model(VLJEPAModelArguments(x_encoder_id=vision, predictor_model_id=llm, y_encoder_id=st,
                                       predictor_num_layers=1, embedding_dim=16, y_encoder_frozen=False))
    for module in model.modules():  # train mode (the Y-encoder's gradients), without dropout's randomness
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    model = accelerator.prepare(model)
    per_device = len(COLOURS) // accelerator.num_processes
    rows = slice(accelerator.process_index * per_device, (accelerator.process_index + 1) * per_device)
    images = [Image.new("RGB", (32, 32), colour) for colour in COLOURS][rows]
    output = model(images=images, queries=["what colour is it?"] * per_device, targets=COLOURS[rows],
                   **global_negatives(accelerator))
    accelerator.backward(output.loss)
    trainable = {name: p for name, p in accelerator.unwrap_model(model).named_parameters() if p.requires_grad}
    unused = [name for name, p in trainable.items() if p.grad is None]
    assert not unused, f"parameters without gradient (DDP would not average them): {unused}"
    grads = {name: p.grad for name, p in trainable.items()}
    if accelerator.is_main_process:
        save_file({"loss": output.loss.detach().reshape(1), **grads}, out)


if __name__ == "__main__":
    first_step(Accelerator(cpu=True), *sys.argv[1:])
"""


@pytest.mark.slow
@pytest.mark.multiprocess
def test_two_processes_first_step_equals_one_process(tmp_path, models):
    """2 processes x 4 examples (gathered InfoNCE negatives, DDP) give the loss and gradients of 1 x 8."""
    script = tmp_path / "two_rank_step.py"
    script.write_text(TWO_RANK_STEP)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
               str(ROOT / "recipes" / "accelerate" / "cpu-2proc.yaml"), "--main_process_port", str(port),
               str(script), str(tmp_path / "two.safetensors"), *map(str, models)]
    done = subprocess.run(command, check=False, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]

    sys.path.insert(0, str(tmp_path))
    try:
        import two_rank_step
    finally:
        sys.path.remove(str(tmp_path))

    class OneProcess:  # what first_step needs of an Accelerator, for a plain single process
        num_processes, process_index, is_main_process = 1, 0, True

        def prepare(self, model):
            return model

        def unwrap_model(self, model):
            return model

        def backward(self, loss):
            loss.backward()

        def gather(self, tensor):
            return tensor

    two_rank_step.first_step(OneProcess(), str(tmp_path / "one.safetensors"), *map(str, models))
    one, two = load_file(tmp_path / "one.safetensors"), load_file(tmp_path / "two.safetensors")
    assert one.keys() == two.keys() and len(one) > 10
    assert any(k.startswith("y_encoder.encoder.") for k in one) and "loss_fn.log_logit_scale" in one
    for key in one:
        torch.testing.assert_close(two[key], one[key], rtol=1e-4, atol=1e-5, msg=key)
