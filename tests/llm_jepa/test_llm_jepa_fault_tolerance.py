"""LLM-JEPA fault tolerance and publishing: atomic checkpoints, full disk, non-finite loss, exact resume after
SIGKILL, collapse monitoring and push_to_hub without pickles."""

import copy
import errno
import json
import logging
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import Future
from pathlib import Path

import pytest
import torch
from datasets import Dataset
from huggingface_hub import CommitInfo, HfApi, RepoUrl
from huggingface_hub.utils import DEFAULT_IGNORE_PATTERNS, filter_repo_objects
from transformers import TrainerCallback
from transformers.trainer_utils import get_last_checkpoint

import llm_jepa.trainer as trainer_module
from jepa_core.hub import PICKLE_SUFFIXES
from jepa_core.monitoring import CollapseMonitorConfig, NonFiniteLossError
from llm_jepa.arguments import DataArguments, LLMJepaModelArguments, LLMJepaTrainingArguments
from llm_jepa.loading import load_for_inference, load_model_for_training
from llm_jepa.packing import LLMJepaCollator
from llm_jepa.run import train
from llm_jepa.trainer import LLMJepaTrainer
from llm_jepa.views import ViewTokenizer, tokenize_views_dataset

ROOT = Path(__file__).resolve().parents[2]
WORDS = ["dog", "cat", "red", "blue", "circle", "square"]


def _messages(n=8):
    return Dataset.from_list([{"id": f"ex{i}", "messages": [
        {"role": "user", "content": f"lines containing the word {WORDS[i % 6]} {i % 3 + 1} times"},
        {"role": "assistant", "content": f"(.*{WORDS[i % 6]}.*){{{i % 3 + 1}}}"},
    ]} for i in range(n)])


def _args(tmp_path, **overrides):
    values = {"output_dir": str(tmp_path / "run"), "max_steps": 3, "per_device_train_batch_size": 4,
              "learning_rate": 5e-2, "logging_steps": 1, "save_strategy": "no", "report_to": "none",
              "num_pred_tokens": 1, "disable_tqdm": True, "seed": 0}
    values.update(overrides)
    return LLMJepaTrainingArguments(**values)


def _trainer(model_path, tmp_path, collapse_config=None, **overrides):
    args = _args(tmp_path, **overrides)
    model, tokenizer, pred_ids, saved = load_model_for_training(
        LLMJepaModelArguments(model_name_or_path=str(model_path), peft="lora", lora_r=4, lora_alpha=8, lora_dropout=0.0),
        num_pred_tokens=args.num_pred_tokens,
    )
    views = tokenize_views_dataset(_messages(), ViewTokenizer(tokenizer, max_length=128))
    collator = LLMJepaCollator(pred_token_ids=pred_ids, pad_token_id=tokenizer.pad_token_id, mode=args.jepa_mode)
    return LLMJepaTrainer(model=model, args=args, train_dataset=views, data_collator=collator,
                          processing_class=tokenizer, saved_config=saved, collapse_config=collapse_config)


def _patch_loss(monkeypatch, change):
    """Run ``change(trainer_step, output)`` on every training loss output."""
    real = trainer_module.llm_jepa_loss

    def loss(model, batch, config, **kwargs):
        output = real(model, batch, config, **kwargs)
        if model.training:
            change(output)
        return output

    monkeypatch.setattr(trainer_module, "llm_jepa_loss", loss)


def _nan_on_step(monkeypatch, trainer, step):
    def change(output):
        if trainer.state.global_step == step:
            output.loss = output.loss * float("nan")

    _patch_loss(monkeypatch, change)


class _Snapshots(TrainerCallback):
    """Trainable parameters and optimizer state after every optimizer step."""

    def __init__(self):
        self.params, self.optim = [], []

    def on_step_end(self, args, state, control, model=None, optimizer=None, **kwargs):
        self.params.append({n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad})
        self.optim.append(copy.deepcopy(optimizer.state_dict()["state"]))


def _same_state(a, b):
    return a.keys() == b.keys() and all(
        torch.equal(a[k][name], b[k][name]) if torch.is_tensor(a[k][name]) else a[k][name] == b[k][name]
        for k in a for name in a[k]
    )


# ---- non-finite loss --------------------------------------------------------------------------------------


def test_nonfinite_loss_stops_naming_the_step(tiny_llama3, tmp_path, monkeypatch):
    trainer = _trainer(tiny_llama3, tmp_path)
    assert trainer.args.on_nonfinite_loss == "stop"
    _nan_on_step(monkeypatch, trainer, 1)
    with pytest.raises(NonFiniteLossError, match=r"global step 2 .*on_nonfinite_loss: skip"):
        trainer.train()


def test_nonfinite_loss_skip_leaves_weights_and_optimizer_state_alone(tiny_llama3, tmp_path, monkeypatch, caplog):
    trainer = _trainer(tiny_llama3, tmp_path, on_nonfinite_loss="skip")
    snapshots = _Snapshots()
    trainer.add_callback(snapshots)
    _nan_on_step(monkeypatch, trainer, 1)
    with caplog.at_level(logging.WARNING, logger="llm_jepa.trainer"):
        result = trainer.train()
    assert "non-finite training loss at global step 2: skipped" in caplog.text
    (p1, p2, p3), (o1, o2, o3) = snapshots.params, snapshots.optim
    assert all(torch.equal(p1[n], p2[n]) for n in p1), "the skipped step moved parameters"
    assert _same_state(o1, o2), "the skipped step changed the optimizer state (e.g. AdamW moments)"
    assert not all(torch.equal(p2[n], p3[n]) for n in p2) and not _same_state(o2, o3)
    assert all(torch.isfinite(p).all() for p in p3.values())
    logged = [e["skipped_nonfinite_steps"] for e in trainer.state.log_history if "loss" in e]
    assert logged == [0, 1, 1] and result.metrics["skipped_nonfinite_steps"] == 1


def test_nonfinite_policy_is_validated(tmp_path):
    with pytest.raises(ValueError, match="on_nonfinite_loss"):
        _args(tmp_path, on_nonfinite_loss="ignore")


# ---- checkpoints ------------------------------------------------------------------------------------------


class _Killed(BaseException):
    """Stands in for SIGKILL in the middle of a save: nothing cleans up."""


def _fail_during_save(monkeypatch, trainer, step, error):
    real = trainer._save_rng_state
    seen = []

    def save_rng_state(output_dir):
        real(output_dir)  # the model, optimizer and scheduler are already written
        run_dir = Path(trainer.args.output_dir)
        seen.append((Path(output_dir).parent.name, get_last_checkpoint(run_dir)))
        if trainer.state.global_step == step:
            raise error

    monkeypatch.setattr(trainer, "_save_rng_state", save_rng_state)
    return seen


def _resume_to_end(tiny_llama3, tmp_path):
    trainer = _trainer(tiny_llama3, tmp_path, save_strategy="steps", save_steps=1, save_total_limit=2)
    trainer.train(resume_from_checkpoint=True)
    assert trainer.state.global_step == 3
    return sorted(p.name for p in Path(trainer.args.output_dir).iterdir() if "checkpoint" in p.name)


def test_interrupted_save_leaves_no_checkpoint_that_resume_would_pick(tiny_llama3, tmp_path, monkeypatch):
    trainer = _trainer(tiny_llama3, tmp_path, save_strategy="steps", save_steps=1, save_total_limit=2)
    seen = _fail_during_save(monkeypatch, trainer, 2, _Killed())
    with pytest.raises(_Killed):
        trainer.train()
    run = tmp_path / "run"
    # While checkpoint-2 was being written, it was not visible as a checkpoint: the last one was checkpoint-1.
    assert seen == [("_tmp-checkpoint-1", None), ("_tmp-checkpoint-2", str(run / "checkpoint-1"))]
    assert get_last_checkpoint(run) == str(run / "checkpoint-1") and not (run / "checkpoint-2").exists()
    assert (run / "_tmp-checkpoint-2").is_dir()  # the half-written save, as a kill would leave it
    # Resume picks checkpoint-1, clears the leftover and keeps rotating (save_total_limit=2).
    assert _resume_to_end(tiny_llama3, tmp_path) == ["checkpoint-2", "checkpoint-3"]


def test_full_disk_during_save_names_the_intact_checkpoint(tiny_llama3, tmp_path, monkeypatch):
    trainer = _trainer(tiny_llama3, tmp_path, save_strategy="steps", save_steps=1, save_total_limit=2)
    _fail_during_save(monkeypatch, trainer, 2, OSError(errno.ENOSPC, "No space left on device"))
    run = tmp_path / "run"
    with pytest.raises(OSError, match="no space left") as caught:
        trainer.train()
    message = str(caught.value)
    assert caught.value.errno == errno.ENOSPC
    assert str(run / "checkpoint-2") in message and f"previous checkpoint {run / 'checkpoint-1'} is intact" in message
    assert sorted(p.name for p in run.iterdir() if "checkpoint" in p.name) == ["checkpoint-1"]  # partial removed
    assert _resume_to_end(tiny_llama3, tmp_path) == ["checkpoint-2", "checkpoint-3"]


@pytest.mark.slow
def test_sigkill_then_resume_gives_bit_identical_weights(tiny_llama3, tmp_path):
    """`llm-jepa train` killed with SIGKILL after a checkpoint, resumed to the end == one uninterrupted run."""
    from safetensors.torch import load_file

    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in _messages(12)))
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(
        f"model_name_or_path: {tiny_llama3}\npeft: lora\nlora_r: 4\nlora_alpha: 8\nlora_dropout: 0.1\n"
        f"dataset: jsonl:{data}\nmax_length: 128\nnum_pred_tokens: 1\njepa_dropout: 0.5\nmax_steps: 24\n"
        "per_device_train_batch_size: 2\nlearning_rate: 1.0e-2\nlogging_steps: 1\nsave_strategy: steps\n"
        "save_steps: 2\nsave_total_limit: 2\nreport_to: none\ndisable_tqdm: true\nseed: 3\n"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}

    def command(out, *extra):
        return [sys.executable, "-m", "llm_jepa.cli", "train", str(recipe), "--output_dir", str(out), *extra]

    log = open(tmp_path / "reference.log", "w")  # noqa: SIM115 (closed below)
    reference = subprocess.Popen(command(tmp_path / "reference"), cwd=ROOT, env=env, stdout=log, stderr=log)
    killed_run = tmp_path / "killed"
    victim = subprocess.Popen(command(killed_run), cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not (killed_run.is_dir() and get_last_checkpoint(killed_run)):
        assert victim.poll() is None and time.monotonic() < deadline, "no checkpoint before the run ended"
        time.sleep(0.02)
    victim.send_signal(signal.SIGKILL)
    assert victim.wait() == -signal.SIGKILL
    assert not (killed_run / "adapter_model.safetensors").exists(), "the run finished before it was killed"
    done = subprocess.run(command(killed_run, "--resume_from_checkpoint", "true"), cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert reference.wait(timeout=300) == 0, (tmp_path / "reference.log").read_text()[-3000:]
    log.close()
    state = json.loads((killed_run / "trainer_state.json").read_text())
    assert state["global_step"] == 24
    resumed = load_file(killed_run / "adapter_model.safetensors")
    expected = load_file(tmp_path / "reference" / "adapter_model.safetensors")
    assert resumed.keys() == expected.keys()
    assert all(torch.equal(resumed[k], expected[k]) for k in expected), "resumed weights differ"


# ---- collapse monitoring ----------------------------------------------------------------------------------


def test_collapse_statistics_are_logged(tiny_llama3, tmp_path):
    trainer = _trainer(tiny_llama3, tmp_path, max_steps=2)
    trainer.train()
    logged = [e for e in trainer.state.log_history if "loss" in e]
    for stream in ("jepa_prediction", "jepa_target"):
        for stat in ("std_mean", "rankme", "cosine_mean", "collapsed"):
            assert all(f"{stream}/{stat}" in e for e in logged), f"{stream}/{stat}"
    off = _trainer(tiny_llama3, tmp_path / "off", max_steps=1, collapse_monitor=False)
    off.train()
    assert not any("jepa_prediction/rankme" in e for e in off.state.log_history)


def test_forced_collapse_warns_once(tiny_llama3, tmp_path, monkeypatch, caplog):
    def collapse(output):
        if output.prediction is not None:  # predictions collapse to one point; targets stay spread out
            output.prediction = torch.ones_like(output.prediction)
            output.target = torch.randn_like(output.target)

    _patch_loss(monkeypatch, collapse)
    config = CollapseMonitorConfig(buffer_size=16, min_vectors=4)
    trainer = _trainer(tiny_llama3, tmp_path, collapse_config=config)
    with caplog.at_level(logging.WARNING, logger="jepa_core.monitoring"):
        trainer.train()
    assert caplog.text.count("Possible representation collapse in 'jepa_prediction'") == 1
    assert "collapse in 'jepa_target'" not in caplog.text
    logged = [e for e in trainer.state.log_history if "loss" in e]
    assert logged[-1]["jepa_prediction/collapsed"] == 1.0 and logged[-1]["jepa_target/collapsed"] == 0.0


# ---- push_to_hub ------------------------------------------------------------------------------------------


class FakeHub:
    """The Hub at the HfApi boundary: a repo is a folder; every uploaded path is recorded."""

    def __init__(self, root):
        self.root, self.uploaded = root, []

    def create_repo(self, api, repo_id, **kwargs):
        (self.root / repo_id).mkdir(parents=True, exist_ok=True)
        return RepoUrl(f"https://huggingface.co/{repo_id}")

    def upload_folder(self, api, *, repo_id, folder_path, ignore_patterns=None, run_as_future=False, **kwargs):
        folder = Path(folder_path)
        paths = [p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()]
        for rel in filter_repo_objects(paths, ignore_patterns=[*(ignore_patterns or []), *DEFAULT_IGNORE_PATTERNS]):
            self.uploaded.append(rel)
            target = self.root / repo_id / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes((folder / rel).read_bytes())
        info = CommitInfo(commit_url=f"https://huggingface.co/{repo_id}/commit/0", commit_message="",
                          commit_description="", oid="0")
        if not run_as_future:
            return info
        future = Future()
        future.set_result(info)
        return future


def test_push_to_hub_from_the_training_config_uploads_no_pickles(tiny_llama3, tmp_path, monkeypatch):
    hub = FakeHub(tmp_path / "remote")
    monkeypatch.setattr(HfApi, "create_repo", lambda api, *a, **k: hub.create_repo(api, *a, **k))
    monkeypatch.setattr(HfApi, "upload_folder", lambda api, *a, **k: hub.upload_folder(api, *a, **k))
    model_args = LLMJepaModelArguments(model_name_or_path=str(tiny_llama3), peft="lora", lora_r=4, lora_alpha=8)
    args = _args(tmp_path, max_steps=2, save_strategy="steps", save_steps=1, push_to_hub=True,
                 hub_model_id="someone/tiny-llm-jepa", jepa_loss_weight=2.0, num_pred_tokens=2)
    out = train(model_args, DataArguments(dataset="regex-synth", max_length=128), args, train_dataset=_messages())
    assert (out / "checkpoint-2" / "optimizer.pt").is_file()  # the checkpoints do hold pickles ...
    assert not [f for f in hub.uploaded if f.endswith(PICKLE_SUFFIXES)], hub.uploaded  # ... none leaves
    assert not [f for f in hub.uploaded if "checkpoint" in f]
    remote = tmp_path / "remote" / "someone" / "tiny-llm-jepa"
    files = {p.name for p in remote.iterdir()}
    assert {"adapter_model.safetensors", "adapter_config.json", "tokenizer.json", "llm_jepa_config.json",
            "README.md"} <= files
    card = (remote / "README.md").read_text()
    assert "| lambda (jepa_loss_weight) | 2 |" in card and "| k (num_pred_tokens) | 2 |" in card
    assert "| d (jepa_loss) | cosine |" in card and "final lm_loss" in card and "someone/tiny-llm-jepa" in card
    model, tokenizer = load_for_inference(remote)
    local, _ = load_for_inference(out)
    pred_ids = tokenizer.convert_tokens_to_ids(["[PRED_1]", "[PRED_2]"])
    assert tokenizer.unk_token_id not in pred_ids
    probe = torch.tensor([tokenizer("lines containing dog", add_special_tokens=False)["input_ids"] + pred_ids])
    with torch.no_grad():
        torch.testing.assert_close(model(input_ids=probe).logits, local(input_ids=probe).logits, rtol=0, atol=0)


def test_publishing_checkpoint_state_is_refused(tmp_path):
    with pytest.raises(ValueError, match="pickled optimizer"):
        _args(tmp_path, push_to_hub=True, hub_model_id="someone/x", hub_strategy="checkpoint")
