"""No secret is written or uploaded: run-dir redaction, the push allow-list, and both trainers end to end (a
token given as a flag and in HF_TOKEN appears in no file a training run writes, and only allow-listed files
reach the Hub)."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from fake_hub import files_containing, install_fake_hub

from jepa_core.hub import PublishError, push_folder, push_main, select_upload_files
from jepa_core.model_card import ModelCardInfo
from jepa_core.rundir import REDACTED, is_secret_name, redact_argv, redact_config, write_run_metadata

FLAG_TOKEN = "hf_FlagTokenDoNotLeak0123456789abcdef"
ENV_TOKEN = "hf_EnvTokenDoNotLeak0123456789abcdef"
PLANTED_SECRET = "planted-secret-value-42"


@pytest.mark.parametrize("name, secret", [
    ("hub_token", True), ("--hub_token", True), ("wandb_api_key", True), ("--wandb-api-key", True),
    ("db_password", True), ("client_secret", True), ("aws_credentials", True), ("apiKey", True),
    ("push_to_hub_token", True), ("x_encoder_token_selection", False), ("num_pred_tokens", False),
    ("predictor_max_query_tokens", False), ("average_tokens_across_devices", False), ("tokenizer", False),
    ("learning_rate", False), ("hub_model_id", False),
])
def test_secret_names(name, secret):
    assert is_secret_name(name) is secret


def test_redact_argv_hides_flag_values_and_their_other_occurrences(monkeypatch):
    monkeypatch.setenv("HF_TOKEN", ENV_TOKEN)
    argv = ["train", "r.yaml", "--hub_token", FLAG_TOKEN, "--wandb_api_key=k3y-value", "--lr", "1",
            "--dataset_kwargs", json.dumps({"token": FLAG_TOKEN}), "--note", f"uses {ENV_TOKEN}"]
    redacted = redact_argv(argv)
    assert redacted[:5] == ["train", "r.yaml", "--hub_token", REDACTED, f"--wandb_api_key={REDACTED}"]
    assert redacted[5:7] == ["--lr", "1"]
    text = json.dumps(redacted)
    assert FLAG_TOKEN not in text and ENV_TOKEN not in text and "k3y-value" not in text


def test_redact_config_nested_and_json_text():
    data = {"training": {"hub_token": FLAG_TOKEN, "learning_rate": 0.1, "num_pred_tokens": 2,
                         "dataset_kwargs": json.dumps({"root": "/d", "auth_token": "abcd1234"}),
                         "extra": [{"password": "pw-123456"}]}}
    found: set[str] = set()
    clean = redact_config(data, secrets=found)
    assert clean["training"]["hub_token"] == REDACTED and clean["training"]["num_pred_tokens"] == 2
    assert json.loads(clean["training"]["dataset_kwargs"]) == {"root": "/d", "auth_token": REDACTED}
    assert clean["training"]["extra"] == [{"password": REDACTED}]
    assert found == {FLAG_TOKEN, "abcd1234", "pw-123456"}
    assert data["training"]["hub_token"] == FLAG_TOKEN  # the input is not modified


def test_run_metadata_never_holds_a_token(tmp_path, monkeypatch):
    from dataclasses import dataclass

    @dataclass
    class Args:
        hub_token: str | None = FLAG_TOKEN
        learning_rate: float = 0.1
        endpoint: str = f"https://user:{ENV_TOKEN}@example.org/{FLAG_TOKEN}"

    monkeypatch.setenv("HF_TOKEN", ENV_TOKEN)
    write_run_metadata(tmp_path, {"training": Args()}, argv=["x", f"--hub_token={FLAG_TOKEN}", ENV_TOKEN])
    for name in ("config.yaml", "run_info.json"):
        text = (tmp_path / name).read_text()
        assert FLAG_TOKEN not in text and ENV_TOKEN not in text, name
    training = yaml.safe_load((tmp_path / "config.yaml").read_text())["training"]
    assert training["hub_token"] == REDACTED
    assert training["endpoint"] == f"https://user:{REDACTED}@example.org/{REDACTED}"  # other fields scrubbed too
    assert json.loads((tmp_path / "run_info.json").read_text())["argv"] == ["x", f"--hub_token={REDACTED}", REDACTED]


# ---- the push allow-list ------------------------------------------------------------------------------

PICKLES = ["optimizer.pt", "x.pth.tar", "y.pkl.gz"]
NEVER = [".env", ".huggingface/token", "run_info.json", "notes.txt", "data.tar", "hf_token.txt",
         "runs/events.out.tfevents.1.host"]


def _plant(folder: Path) -> None:
    for rel in [*PICKLES, *NEVER]:
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{PLANTED_SECRET} {FLAG_TOKEN}\n")
    (folder / "run_info.json").write_text(json.dumps({"argv": ["--hub_token", FLAG_TOKEN]}))
    (folder / "eval").mkdir()
    for rel in ("eval/metrics.json", "eval/report.md", "eval/predictions.jsonl", "eval/plot.png", "eval/plot.svg"):
        (folder / rel).write_text("{}\n")


def _card() -> ModelCardInfo:
    return ModelCardInfo(model_name="tiny", intended_use="Tests.", limitations="Random weights.", base_models=[],
                         datasets=[], recipe=None, metrics={}, eval_task=None, eval_dataset=None)


def test_push_uploads_only_the_allow_list(tiny_llama3, tmp_path, monkeypatch, caplog):
    fake = install_fake_hub(monkeypatch, tmp_path / "remote")
    folder = tmp_path / "final"
    shutil.copytree(tiny_llama3, folder)
    _plant(folder)
    with pytest.raises(PublishError) as info:  # pickles are refused by name, nothing leaves
        push_folder(folder, "me/x", card=_card())
    assert all(name in str(info.value) for name in PICKLES)
    assert fake.created == [] and fake.uploads == []

    with caplog.at_level(logging.INFO, logger="jepa_core.hub"):
        push_folder(folder, "me/x", card=_card(), ignore_patterns=PICKLES)
    uploaded = fake.files("me/x")
    model_files = {p.name for p in Path(tiny_llama3).iterdir()}
    assert uploaded == model_files | {"README.md", "eval/metrics.json", "eval/report.md", "eval/predictions.jsonl",
                                      "eval/plot.png", "eval/plot.svg"}
    assert not any(PLANTED_SECRET in (fake.root / "me/x" / rel).read_text(errors="replace") for rel in uploaded)
    for rel in NEVER:  # each skipped file is named in the log
        assert f"Not uploading {folder / rel}" in caplog.text, rel
    assert fake.tokens == [None, None]  # no token given: huggingface_hub uses HF_TOKEN / hf auth login

    assert push_main([str(folder), "--repo_id", "me/logs", "--include_logs", "--ignore_patterns", *PICKLES],
                     kind="llm-jepa") == 0
    assert fake.files("me/logs") == uploaded | {"runs/events.out.tfevents.1.host"}


def test_selection_skips_symlinks_leaving_the_folder(tmp_path):
    outside = tmp_path / "secret.json"
    outside.write_text("{}")
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").symlink_to(outside)
    files, skipped = select_upload_files(folder)
    assert files == [] and "outside the folder" in skipped["config.json"]


# ---- both trainers, end to end --------------------------------------------------------------------------


@pytest.mark.usefixtures("one_thread")
def test_llm_jepa_run_writes_and_uploads_no_secret(tiny_llama3, tmp_path, monkeypatch):
    from datasets import Dataset

    from llm_jepa.arguments import DataArguments, LLMJepaModelArguments, LLMJepaTrainingArguments
    from llm_jepa.run import train

    monkeypatch.setenv("HF_TOKEN", ENV_TOKEN)
    fake = install_fake_hub(monkeypatch, tmp_path / "remote")
    out = tmp_path / "run"
    out.mkdir()
    _plant(out)
    planted = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    rows = [{"id": f"e{i}", "messages": [{"role": "user", "content": f"word {i}"},
                                          {"role": "assistant", "content": f"(.*w{i}.*)"}]} for i in range(4)]
    args = LLMJepaTrainingArguments(
        output_dir=str(out), max_steps=2, per_device_train_batch_size=2, logging_steps=1, save_strategy="steps",
        save_steps=1, report_to="tensorboard", disable_tqdm=True, num_pred_tokens=1, push_to_hub=True,
        hub_model_id="me/llm", hub_token=FLAG_TOKEN,
    )
    model_args = LLMJepaModelArguments(model_name_or_path=str(tiny_llama3), peft="lora", lora_r=2, lora_alpha=4)
    argv = ["r.yaml", "--hub_token", FLAG_TOKEN]
    train(model_args, DataArguments(dataset="regex-synth", max_length=64), args, argv=argv,
          train_dataset=Dataset.from_list(rows))
    assert (out / "checkpoint-2").is_dir() and list(out.rglob("events.out.tfevents.*"))
    written = [f for f in files_containing(out, FLAG_TOKEN, ENV_TOKEN) if f not in planted]
    assert written == [], f"token written to {written}"
    assert FLAG_TOKEN not in (out / "run_info.json").read_text()  # the planted one was replaced, redacted
    uploaded = fake.files("me/llm")
    assert not uploaded & planted - {"eval/metrics.json", "eval/report.md", "eval/predictions.jsonl",
                                     "eval/plot.png", "eval/plot.svg"}
    assert not [f for f in uploaded if "tfevents" in f or f.startswith("checkpoint")]
    assert {"adapter_model.safetensors", "README.md", "config.yaml"} <= uploaded
    assert set(fake.tokens) == {FLAG_TOKEN}  # the flag's token authenticated the calls, in memory


@pytest.fixture
def one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.mark.parametrize("include_logs", [False, True])
def test_llm_jepa_upload_takes_logs_only_on_request(tmp_path, monkeypatch, include_logs):
    from types import SimpleNamespace

    from llm_jepa.trainer import LLMJepaTrainer

    fake = install_fake_hub(monkeypatch, tmp_path / "remote")
    out = tmp_path / "run"
    for rel in ("adapter_model.safetensors", "adapter_config.json", "runs/x/events.out.tfevents.1.host",
                "checkpoint-1/adapter_model.safetensors", "_tmp-checkpoint-2/x.json", ".env"):
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_text("x")
    trainer = SimpleNamespace(hub_model_id="me/logs", args=SimpleNamespace(
        output_dir=str(out), hub_include_logs=include_logs, hub_token=None, hub_revision=None))
    LLMJepaTrainer._upload_output_dir(trainer, "msg", blocking=True)
    expected = {"adapter_model.safetensors", "adapter_config.json"}
    assert fake.files("me/logs") == expected | ({"runs/x/events.out.tfevents.1.host"} if include_logs else set())
