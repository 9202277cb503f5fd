"""Publishing a trained VL-JEPA model (push_to_hub after training, `vljepa push`) through a fake Hub, and loading
it back by repo id."""

from __future__ import annotations

import json
import os
import stat

import pytest
import torch
import yaml
from fake_hub import files_containing, install_fake_hub, serve_downloads
from huggingface_hub import ModelCard
from PIL import Image
from test_vljepa_training import trainer_argv

from jepa_core.config import ConfigError, parse_config
from jepa_core.hub import PICKLE_SUFFIXES
from jepa_core.rundir import REDACTED
from vljepa.cli import main
from vljepa.training.arguments import VLJEPAModelArguments, VLJEPATrainingArguments

pytest_plugins = ["test_vljepa_kit"]  # shared fixtures: vl_tiny_st, one_torch_thread
pytestmark = pytest.mark.usefixtures("one_torch_thread")

REPO = "me/vljepa-tiny"
FLAG_TOKEN = "hf_FlagTokenDoNotLeak0123456789abcdef"
ENV_TOKEN = "hf_EnvTokenDoNotLeak0123456789abcdef"


def test_push_to_hub_needs_a_repo_id():
    with pytest.raises(ConfigError, match="push_to_hub needs hub_model_id"):
        parse_config((VLJEPAModelArguments, VLJEPATrainingArguments), ["--query_dataset", "x", "--eval_task", "none",
                                                           "--push_to_hub", "true"])
    with pytest.raises(ValueError, match="'user/name'"):
        VLJEPATrainingArguments(query_dataset="x", eval_task="none", push_to_hub=True, hub_model_id="no-namespace")


def test_train_pushes_the_model_with_a_card_and_it_loads_back(tmp_path, tiny_timm, tiny_llama3, vl_tiny_st,
                                                              monkeypatch, capsys):
    from vljepa import load_pretrained
    from vljepa.modeling import VLJEPAModel

    fake = install_fake_hub(monkeypatch, tmp_path / "remote")
    out = tmp_path / "run"
    argv = trainer_argv(out, tmp_path / "cache", tiny_timm, tiny_llama3, vl_tiny_st, "--save_steps", "0",
                        "--query_dataset_kwargs", '{"num_images": 2, "use_cache": false}',
                        "--predictor_revision", "pinned-abc123",
                        "--push_to_hub", "true", "--hub_model_id", REPO, "--hub_private_repo", "true")
    assert main(argv) == 0
    assert fake.created == [{"repo_id": REPO, "private": True, "exist_ok": True, "repo_type": "model"}]
    assert len(fake.uploads) == 1
    local, remote = out / "model", fake.root / REPO
    assert fake.files(REPO) == {"README.md", "config.json", "model.safetensors", "metrics.json"}
    assert not any(name.endswith(PICKLE_SUFFIXES) for name in fake.files(REPO))
    for name in fake.files(REPO):  # the uploaded folder is output_dir/model, card included
        assert (remote / name).read_bytes() == (local / name).read_bytes(), name
    config = json.loads((remote / "config.json").read_text())
    assert config["model_type"] == "vljepa" and config["predictor_revision"] == "pinned-abc123"
    metrics = json.loads((remote / "metrics.json").read_text())
    assert metrics == json.loads((out / "metrics.json").read_text()) and "vqa_accuracy" in metrics

    card = ModelCard.load(remote / "README.md")
    assert card.data.library_name == "jepa-hf" and "vljepa" in card.data.tags
    for model_id in (tiny_timm, tiny_llama3, vl_tiny_st):
        assert str(model_id) in card.text
    assert "revision `pinned-abc123`" in card.text
    assert card.data.datasets == ["scenes", "scenes-vqa"]
    assert f"| vqa_accuracy | {metrics['vqa_accuracy']:.4g} |" in card.text
    assert "| skipped_nonfinite_steps | 0 |" in card.text
    assert f'VLJEPAModel.from_pretrained("{REPO}")' in card.text

    downloaded = serve_downloads(monkeypatch, fake)
    loaded = VLJEPAModel.from_pretrained(REPO)
    auto = load_pretrained(REPO)
    assert downloaded == [REPO, REPO] and type(auto) is VLJEPAModel
    saved = VLJEPAModel.from_pretrained(local)
    images, questions = [Image.new("RGB", (32, 32), "red"), Image.new("RGB", (32, 32), "blue")], ["what?", "colour?"]
    expected = saved.predict(images, questions)
    assert torch.equal(loaded.predict(images, questions), expected)
    assert torch.equal(auto.predict(images, questions), expected)

    # `vljepa push` publishes a saved folder; its own (filled) card is kept.
    capsys.readouterr()
    assert main(["push", str(local), "--repo_id", "me/again"]) == 0
    assert capsys.readouterr().out.strip() == "https://huggingface.co/me/again/commit/0123abcd"
    assert fake.created[-1]["private"] is False
    assert (fake.root / "me/again" / "README.md").read_text() == (local / "README.md").read_text()
    assert fake.files("me/again") == fake.files(REPO)


def test_cli_usage_lists_push(capsys):
    assert main(["--help"]) == 0
    assert "vljepa push FOLDER --repo_id USER/NAME [--private]" in capsys.readouterr().out


def test_vljepa_run_writes_and_uploads_no_secret(tmp_path, tiny_timm, tiny_llama3, vl_tiny_st, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", ENV_TOKEN)
    fake = install_fake_hub(monkeypatch, tmp_path / "remote")
    out = tmp_path / "run"
    argv = trainer_argv(out, tmp_path / "cache", tiny_timm, tiny_llama3, vl_tiny_st, "--save_steps", "0",
                        "--query_dataset_kwargs", '{"num_images": 2, "use_cache": false}', "--eval_task", "none",
                        "--report_to", "tensorboard", "--push_to_hub", "true", "--hub_model_id", "me/vl",
                        "--hub_token", FLAG_TOKEN)
    previous = os.umask(0o027)  # group may read, others nothing: the files follow it (not mkstemp's 0600)
    try:
        assert main(argv) == 0
    finally:
        os.umask(previous)
    shards = list((tmp_path / "cache").rglob("shard-*.safetensors"))
    for path in [out / "model" / "model.safetensors", out / "model" / "config.json", out / "metrics.json",
                 out / "config.yaml", out / "run_info.json", *shards]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o640, path
    assert shards
    assert list(out.rglob("events.out.tfevents.*"))
    assert files_containing(out, FLAG_TOKEN, ENV_TOKEN) == []
    assert files_containing(tmp_path / "cache", FLAG_TOKEN, ENV_TOKEN) == []
    assert yaml.safe_load((out / "config.yaml").read_text())["training"]["hub_token"] == REDACTED
    assert fake.files("me/vl") == {"README.md", "config.json", "model.safetensors", "metrics.json"}
    assert set(fake.tokens) == {FLAG_TOKEN}
