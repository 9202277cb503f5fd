"""Saved VL-JEPA and dual-encoder folders load through transformers' AutoConfig / AutoModel, with the standard
keyword arguments, as they do through the package's own from_pretrained."""

from __future__ import annotations

import shutil

import pytest
import torch
from fake_hub import FakeHub, serve_downloads
from PIL import Image
from test_vljepa_kit import tiny_config

pytest_plugins = ["test_vljepa_kit"]
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _images(n: int) -> list[Image.Image]:
    return [Image.new("RGB", (40, 40), color=(50 * i % 255, 30, 200)) for i in range(n)]


@pytest.fixture
def saved_vljepa(tmp_path, tiny_clip, tiny_llama3, vl_tiny_st):
    from vljepa.modeling import VLJEPAModel

    torch.manual_seed(0)
    model = VLJEPAModel.from_config(tiny_config(tiny_clip, tiny_llama3, vl_tiny_st))
    with torch.no_grad():
        model.predictor.output_projection.weight.mul_(1.5)
    model.save_pretrained(tmp_path / "saved")
    return model, tmp_path / "saved"


def test_automodel_loads_a_saved_folder_both_ways(saved_vljepa):
    from transformers import AutoConfig, AutoModel

    from vljepa import VLJEPAConfig, VLJEPAModel, load_pretrained

    model, folder = saved_vljepa
    assert isinstance(AutoConfig.from_pretrained(folder), VLJEPAConfig)
    auto = AutoModel.from_pretrained(folder)
    direct = VLJEPAModel.from_pretrained(folder)
    assert type(auto) is VLJEPAModel and not auto.training
    questions = ["what color?", ""]
    expected = model.predict(_images(2), questions)
    for loaded in (auto, direct, load_pretrained(folder)):
        assert torch.allclose(loaded.predict(_images(2), questions), expected, atol=1e-6)


def test_standard_keyword_arguments(saved_vljepa):
    from transformers import AutoModel

    from vljepa import VLJEPAModel

    _, folder = saved_vljepa
    half = AutoModel.from_pretrained(folder, dtype=torch.bfloat16, device_map="cpu")
    assert {p.dtype for p in half.parameters()} == {torch.bfloat16}
    assert {p.device.type for p in half.parameters()} == {"cpu"}
    legacy = VLJEPAModel.from_pretrained(folder, torch_dtype="float64", device="cpu")
    assert {p.dtype for p in legacy.parameters()} == {torch.float64}
    auto_dtype = VLJEPAModel.from_pretrained(folder, dtype="auto")
    assert {p.dtype for p in auto_dtype.parameters()} == {torch.float32}
    with pytest.raises(ValueError, match="splits the model across devices"):
        VLJEPAModel.from_pretrained(folder, device_map={"x_encoder": "cpu", "predictor": 0})
    with pytest.raises(TypeError, match="unexpected keyword argument"):
        VLJEPAModel.from_pretrained(folder, load_in_4bit=True)
    with pytest.raises(TypeError, match="not a torch dtype"):
        VLJEPAModel.from_pretrained(folder, dtype="float33")
    config = VLJEPAModel.from_pretrained(folder).config
    assert AutoModel.from_pretrained(folder, config=config).config is config


def test_hub_id_with_token_cache_dir_and_subfolder(saved_vljepa, tmp_path, monkeypatch):
    import huggingface_hub

    from vljepa import VLJEPAModel

    model, folder = saved_vljepa
    fake = FakeHub(tmp_path / "remote")
    shutil.copytree(folder, fake.root / "me" / "tiny" / "variant")
    downloaded = serve_downloads(monkeypatch, fake)
    calls: list[dict] = []
    serve = huggingface_hub.snapshot_download

    def recording(repo_id, **kwargs):
        calls.append(kwargs)
        return serve(repo_id, **kwargs)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", recording)
    loaded = VLJEPAModel.from_pretrained("me/tiny", subfolder="variant", token="hf_x", cache_dir=str(tmp_path / "c"),
                                         revision="main")
    assert downloaded == ["me/tiny"]
    assert calls[0]["token"] == "hf_x" and calls[0]["cache_dir"] == str(tmp_path / "c")
    assert calls[0]["revision"] == "main"
    assert torch.allclose(loaded.predict(_images(1), ["q"]), model.predict(_images(1), ["q"]), atol=1e-6)


def test_dual_encoder_registers_too(tmp_path, tiny_clip, vl_tiny_st):
    from transformers import AutoConfig, AutoModel

    from vljepa import DualEncoderConfig, DualEncoderModel

    torch.manual_seed(0)
    dual = DualEncoderModel.from_config(DualEncoderConfig(x_encoder_id=str(tiny_clip), y_encoder_id=str(vl_tiny_st),
                                                          embedding_dim=16))
    dual.save_pretrained(tmp_path / "dual")
    assert isinstance(AutoConfig.from_pretrained(tmp_path / "dual"), DualEncoderConfig)
    loaded = AutoModel.from_pretrained(tmp_path / "dual")
    assert type(loaded) is DualEncoderModel
    assert torch.allclose(loaded.embed_images(_images(2)), dual.embed_images(_images(2)), atol=1e-6)


@pytest.mark.slow  # a fresh interpreter imports torch + transformers (~15 s on 2 shared cores)
def test_register_auto_classes_in_a_fresh_process(saved_vljepa):
    import subprocess
    import sys

    _, folder = saved_vljepa
    code = ("import vljepa; vljepa.register_auto_classes()\nfrom transformers import AutoModel\n"
            f"print(type(AutoModel.from_pretrained({str(folder)!r})).__name__)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "VLJEPAModel"
