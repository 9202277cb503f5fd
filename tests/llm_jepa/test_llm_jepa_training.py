"""LLM-JEPA training on tiny models: parameters move, adapters reload exactly, QLoRA runs on CPU, outputs."""

import json
from pathlib import Path

import pytest
import torch
from datasets import Dataset

from llm_jepa.arguments import DataArguments, LLMJepaModelArguments, LLMJepaTrainingArguments
from llm_jepa.loading import load_for_inference, load_model_for_training
from llm_jepa.objective import jepa_term_scheduled
from llm_jepa.packing import LLMJepaCollator
from llm_jepa.run import train
from llm_jepa.trainer import LLMJepaTrainer
from llm_jepa.views import ViewTokenizer, tokenize_views_dataset

WORDS = ["dog", "cat", "red", "blue", "circle", "square"]


def _messages(n=8):
    rows = []
    for i in range(n):
        word = WORDS[i % len(WORDS)]
        rows.append({"id": f"ex{i}", "messages": [
            {"role": "system", "content": "write a regular expression"},
            {"role": "user", "content": f"lines containing the word {word} {i % 3 + 1} times"},
            {"role": "assistant", "content": f"(.*{word}.*){{{i % 3 + 1}}}"},
        ]})
    return Dataset.from_list(rows)


def _args(tmp_path, **overrides):
    values = {"output_dir": str(tmp_path / "run"), "max_steps": 2, "per_device_train_batch_size": 4,
              "learning_rate": 5e-2, "logging_steps": 1, "save_strategy": "no", "report_to": "none", "use_cpu": True,
              "num_pred_tokens": 2, "disable_tqdm": True, "seed": 0}
    values.update(overrides)
    return LLMJepaTrainingArguments(**values)


def _trainer(model_path, tmp_path, peft, **overrides):
    args = _args(tmp_path, **overrides)
    model, tokenizer, pred_ids, saved = load_model_for_training(
        LLMJepaModelArguments(model_name_or_path=str(model_path), peft=peft, lora_r=4, lora_alpha=8, lora_dropout=0.0),
        num_pred_tokens=args.num_pred_tokens,
    )
    saved.objective = args.objective_dict()
    views = tokenize_views_dataset(_messages(), ViewTokenizer(tokenizer, max_length=128))
    collator = LLMJepaCollator(pred_token_ids=pred_ids, pad_token_id=tokenizer.pad_token_id, mode=args.jepa_mode,
                               stop_gradient=args.jepa_stop_gradient)
    trainer = LLMJepaTrainer(model=model, args=args, train_dataset=views, data_collator=collator,
                             processing_class=tokenizer, saved_config=saved, data_description="tiny test set")
    return trainer, pred_ids


def _probe(tokenizer, pred_ids):
    """An input that contains the [PRED] tokens, so their embeddings shape the logits."""
    ids = tokenizer("lines containing the word dog", add_special_tokens=False)["input_ids"]
    return torch.tensor([ids + pred_ids])


def _trainable_snapshot(model):
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


@pytest.mark.parametrize("peft", ["none", "lora"])
def test_train_moves_every_trainable_tensor_and_reloads_exactly(tiny_llm, tmp_path, peft):
    trainer, pred_ids = _trainer(tiny_llm, tmp_path, peft)
    before = _trainable_snapshot(trainer.model)
    embedding = trainer.model.get_input_embeddings()
    pred_rows_before = embedding(torch.tensor(pred_ids)).detach().clone()
    trainer.train()
    after = _trainable_snapshot(trainer.model)
    unchanged = [n for n in before if torch.equal(before[n], after[n])]
    assert not unchanged, f"trainable tensors that did not move: {unchanged}"
    assert not torch.allclose(embedding(torch.tensor(pred_ids)), pred_rows_before)  # [PRED] rows trained

    out = tmp_path / "saved"
    trainer.save_model(str(out))
    files = {p.name for p in out.iterdir()}
    assert "llm_jepa_config.json" in files and "tokenizer.json" in files
    assert ("adapter_model.safetensors" in files) == (peft == "lora")
    reloaded, tokenizer = load_for_inference(out)
    assert tokenizer.convert_tokens_to_ids(["[PRED_1]", "[PRED_2]"]) == pred_ids
    probe = _probe(tokenizer, pred_ids)
    trainer.model.eval()
    with torch.no_grad():
        torch.testing.assert_close(reloaded(input_ids=probe).logits, trainer.model(input_ids=probe).logits)


def test_lora_adapter_is_small_and_merges(tiny_llama3, tmp_path):
    trainer, pred_ids = _trainer(tiny_llama3, tmp_path, "lora", max_steps=1)
    trainer.train()
    out = tmp_path / "adapter"
    trainer.save_model(str(out))
    from safetensors.torch import load_file

    tensors = load_file(out / "adapter_model.safetensors")
    vocab = trainer.model.get_input_embeddings().weight.shape[0]
    assert all(t.shape[0] != vocab for t in tensors.values()), "the full embedding matrix was saved"
    assert any("trainable_tokens_delta" in name for name in tensors)
    merged, tokenizer = load_for_inference(out, merge=True)
    assert not hasattr(merged, "peft_config")
    probe = _probe(tokenizer, pred_ids)
    trainer.model.eval()
    with torch.no_grad():
        torch.testing.assert_close(merged(input_ids=probe).logits, trainer.model(input_ids=probe).logits,
                                   atol=1e-4, rtol=1e-4)


def test_qlora_step_on_cpu(tiny_llama3, tmp_path):
    import bitsandbytes as bnb

    trainer, _ = _trainer(tiny_llama3, tmp_path, "qlora", max_steps=1)
    assert any(isinstance(m, bnb.nn.Linear4bit) for m in trainer.model.modules())
    before = _trainable_snapshot(trainer.model)
    trainer.train()
    after = _trainable_snapshot(trainer.model)
    moved = [n for n in before if not torch.equal(before[n], after[n])]
    assert any("lora_B" in n for n in moved) and any("trainable_tokens_delta" in n for n in moved)
    assert all(torch.isfinite(p).all() for p in after.values())


def test_train_writes_run_folder_and_model_card(tiny_llama3, tmp_path):
    model_args = LLMJepaModelArguments(model_name_or_path=str(tiny_llama3), peft="lora", lora_r=4, lora_alpha=8)
    data_args = DataArguments(dataset="regex-synth", max_length=128)
    args = _args(tmp_path, jepa_loss_weight=2.0, jepa_loss="l2", jepa_dropout=0.5)
    out = train(model_args, data_args, args, argv=["test"], train_dataset=_messages(), eval_dataset=_messages(4))
    for name in ("config.yaml", "run_info.json", "llm_jepa_config.json", "README.md", "adapter_config.json",
                 "train_results.json", "eval_results.json", "trainer_state.json"):
        assert (out / name).is_file(), name
    card = (out / "README.md").read_text()
    assert "| lambda (jepa_loss_weight) | 2 |" in card and "| d (jepa_loss) | l2 |" in card
    assert "| k (num_pred_tokens) | 2 |" in card and "| JEPA-term dropout | 0.5 |" in card
    assert "eval_lm_loss" in card and "final lm_loss" in card and "load_for_inference" in card
    saved = json.loads((out / "llm_jepa_config.json").read_text())
    assert saved["objective"]["jepa_dropout"] == 0.5 and saved["weights"] == "adapter"
    assert json.loads((out / "adapter_config.json").read_text())["base_model_name_or_path"] == str(tiny_llama3)
    logged = json.loads((out / "trainer_state.json").read_text())["log_history"]
    assert any("lm_loss" in entry and "jepa_term_rate" in entry for entry in logged)
    from jepa_core.config import ConfigError

    with pytest.raises(ConfigError, match="overwrite_output_dir"):  # a finished run is not clobbered
        train(model_args, data_args, args, train_dataset=_messages())


def test_save_merged_writes_a_plain_model(tiny_llama3, tmp_path):
    model_args = LLMJepaModelArguments(model_name_or_path=str(tiny_llama3), peft="lora", lora_r=4, lora_alpha=8,
                                save_merged=True)
    out = train(model_args, DataArguments(max_length=128), _args(tmp_path, max_steps=1), train_dataset=_messages())
    assert (out / "config.json").is_file() and not (out / "adapter_config.json").exists()
    assert json.loads((out / "llm_jepa_config.json").read_text())["weights"] == "full"
    model, tokenizer = load_for_inference(out)
    assert not hasattr(model, "peft_config") and len(tokenizer) == model.get_input_embeddings().weight.shape[0]


def test_push_to_hub_uploads_the_folder_with_the_jepa_card(tiny_llama3, tmp_path, monkeypatch):
    """Offline: the Trainer's own push path runs; only the Hub client is replaced by a recorder."""
    import transformers.trainer

    uploads = []

    class RecordingApi:
        def upload_folder(self, **kwargs):
            card = (Path(kwargs["folder_path"]) / "README.md").read_text()
            files = sorted(p.name for p in Path(kwargs["folder_path"]).iterdir())
            uploads.append({**kwargs, "card": card, "files": files})

    monkeypatch.setattr(transformers.trainer, "hf_api", RecordingApi)
    trainer, _ = _trainer(tiny_llama3, tmp_path, "lora", max_steps=1, hub_model_id="someone/tiny-llm-jepa")
    trainer.hub_model_id = "someone/tiny-llm-jepa"  # the repo exists: no create_repo call
    trainer.train()
    trainer.push_to_hub()
    assert len(uploads) == 1 and uploads[0]["repo_id"] == "someone/tiny-llm-jepa"
    card = uploads[0]["card"]
    assert "# tiny-llm-jepa" in card and "| k (num_pred_tokens) | 2 |" in card
    assert 'snapshot_download("someone/tiny-llm-jepa")' in card and "llm-jepa" in card.split("---")[1]
    assert {"adapter_model.safetensors", "llm_jepa_config.json", "tokenizer.json"} <= set(uploads[0]["files"])


def test_jepa_dropout_schedule_is_seeded_and_has_the_right_rate():
    draws = [jepa_term_scheduled(7, step, 0.3) for step in range(2000)]
    assert draws == [jepa_term_scheduled(7, step, 0.3) for step in range(2000)]
    assert sum(draws) / len(draws) == pytest.approx(0.7, abs=0.04)
    assert all(jepa_term_scheduled(7, s, 0.0) for s in range(10))
    assert not any(jepa_term_scheduled(7, s, 1.0) for s in range(10))


def _free_port():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _launch_command(*args):
    """`accelerate launch` with the shipped cpu-2proc config (torchrun, 2 workers) on a free port."""
    import sys

    root = Path(__file__).resolve().parents[2]
    return [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
            str(root / "recipes" / "accelerate" / "cpu-2proc.yaml"), "--main_process_port", str(_free_port()),
            *args]


def _subprocess_env():
    import os

    root = Path(__file__).resolve().parents[2]
    return {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(root)}


@pytest.mark.slow
@pytest.mark.multiprocess
def test_accelerate_launch_two_cpu_processes(tiny_llama3, tmp_path):
    """`accelerate launch` with the shipped cpu-2proc config runs `llm-jepa train` end to end in ONE gloo group
    of 2 processes; use_cpu is left unset (it defaults to the CPU on a machine without an accelerator)."""
    import subprocess

    from jepa_core.distributed import accelerator_available

    if accelerator_available():
        pytest.skip("checks the CPU-only launch")
    root = Path(__file__).resolve().parents[2]
    data = tmp_path / "train.jsonl"
    data.write_text("\n".join(json.dumps(row) for row in _messages(16)) + "\n")
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(
        f"model_name_or_path: {tiny_llama3}\npeft: lora\nlora_r: 4\nlora_alpha: 8\ndataset: jsonl:{data}\n"
        f"max_length: 128\nnum_pred_tokens: 1\njepa_dropout: 0.5\noutput_dir: {tmp_path / 'run'}\nmax_steps: 3\n"
        "per_device_train_batch_size: 2\nlearning_rate: 1.0e-2\nlogging_steps: 1\nsave_strategy: 'no'\n"
        "report_to: none\ndisable_tqdm: true\n"
    )
    command = _launch_command("-m", "llm_jepa.cli", "train", str(recipe))
    done = subprocess.run(command, check=False, cwd=root, env=_subprocess_env(), capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    out = tmp_path / "run"
    assert (out / "adapter_model.safetensors").is_file() and (out / "run_info.json").is_file()
    assert json.loads((out / "train_results.json").read_text())["num_processes"] == 2
    state = json.loads((out / "trainer_state.json").read_text())
    assert state["global_step"] == 3
    assert any("lm_loss" in entry for entry in state["log_history"])


@pytest.mark.slow
@pytest.mark.multiprocess
@pytest.mark.parametrize(("distance", "mode"), [("cosine", "ddp"), ("infonce", "ddp"), ("infonce", "fsdp")])
def test_two_processes_match_one_process_on_the_global_batch(tiny_llama3, tmp_path, distance, mode):
    """2 processes x B rows give the same loss (mean over ranks) and gradients as 1 process on the 2B rows;
    with infonce that needs the negatives gathered from both processes. ``fsdp``: the 2 processes run
    Accelerate's FSDP2 code path (forced on by the probe; accelerate enables FSDP only on GPUs)."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    probe = str(root / "tests" / "llm_jepa" / "llm_jepa_grad_probe.py")
    runs = {1: [sys.executable, probe], 2: _launch_command(probe)}
    results = {}
    for processes, command in runs.items():
        out = tmp_path / f"grads-{processes}.pt"
        extra = [mode] if processes == 2 else []
        done = subprocess.run([*command, str(tiny_llama3), str(out), "4", distance, *extra], check=False,
                              cwd=root, env=_subprocess_env(), capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        results[processes] = torch.load(out)
        assert results[processes]["num_processes"] == processes
    assert results[2]["sharded"] == (mode == "fsdp") and not results[1]["sharded"]
    one, two = results[1], results[2]
    torch.testing.assert_close(two["loss"], one["loss"], rtol=0, atol=1e-5)
    assert one["grads"].keys() == two["grads"].keys()
    for name, grad in one["grads"].items():
        torch.testing.assert_close(two["grads"][name], grad, rtol=1e-4, atol=1e-5, msg=name)
    assert any(g.abs().sum() > 0 for g in one["grads"].values())


_COLLATE = LLMJepaCollator.__call__


def _batches_seen(model_path, tmp_path, monkeypatch, *, seed, jepa_loss_weight):
    """The conversations of every training batch, in order, of a 3-step LoRA run through llm_jepa.run.train."""
    seen = []

    def recording(self, features):
        seen.append([tuple(f["input_ids"]) for f in features])
        return _COLLATE(self, features)

    monkeypatch.setattr(LLMJepaCollator, "__call__", recording)
    name = f"run-{seed}-{jepa_loss_weight}"
    train(
        LLMJepaModelArguments(model_name_or_path=str(model_path), peft="lora", lora_r=4, lora_alpha=8,
                              lora_dropout=0.1),  # dropout draws differ between the arms; the order must not
        DataArguments(max_length=128),
        _args(tmp_path / name, max_steps=3, per_device_train_batch_size=2, seed=seed,
              jepa_loss_weight=jepa_loss_weight, learning_rate=1e-3),
        train_dataset=_messages(16),
    )
    return seen


def test_the_seed_fixes_the_data_order_in_both_arms(tiny_llama3, tmp_path, monkeypatch):
    """llm-jepa compare's pairing: with the same seed, LLM-JEPA and lambda = 0 see the same batches in the
    same order (the JEPA arm's extra forward work and RNG draws do not move the sampler)."""
    jepa = _batches_seen(tiny_llama3, tmp_path, monkeypatch, seed=5, jepa_loss_weight=1.0)
    baseline = _batches_seen(tiny_llama3, tmp_path, monkeypatch, seed=5, jepa_loss_weight=0.0)
    other_seed = _batches_seen(tiny_llama3, tmp_path, monkeypatch, seed=6, jepa_loss_weight=0.0)
    assert len(jepa) >= 3  # 3 steps (the data loader may fetch one batch ahead)
    assert jepa == baseline
    assert other_seed[:3] != baseline[:3]  # the check can fail: the order does depend on the seed
