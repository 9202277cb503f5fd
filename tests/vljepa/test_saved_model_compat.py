"""Model folders saved before the issue-13 layout (commit ab4dce9) still load, and compute what they did.

``tests/fixtures/vljepa-ab4dce9`` holds a tiny VL-JEPA model and a tiny dual-encoder saved by the code of
that commit (``write_fixture.py`` there says how), with the outputs that code computed on fixed inputs.
Their configs name the frozen encoders by folder names relative to the test kit's folder
(``tiny-clip-vision`` ...), the encoders being the kit's tiny random models: the test builds the same kit,
runs in the kit folder (``monkeypatch.chdir``) so that the relative ids resolve there, and checks first
that the kit's random weights are those the fixture was written with (the frozen encoders are not saved).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

pytest_plugins = ["test_vljepa_kit"]  # vl_tiny_st, one_torch_thread
pytestmark = pytest.mark.usefixtures("one_torch_thread")

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "vljepa-ab4dce9"


def weights_digest(folder: Path) -> str:
    """sha256 over tensor names and values, computed as ``write_fixture.py`` did."""
    spec = importlib.util.spec_from_file_location("write_fixture", FIXTURE / "write_fixture.py")
    writer = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(writer)
    return writer.weights_digest(folder)


@pytest.fixture
def in_kit_folder(monkeypatch, kit_dir, tiny_clip, tiny_llama3, vl_tiny_st) -> Path:
    expected = json.loads((FIXTURE / "kit_weights_sha256.json").read_text())
    for name, digest in expected.items():
        assert (Path(kit_dir) / name).is_dir(), f"the test kit no longer builds {name}"
        assert weights_digest(Path(kit_dir) / name) == digest, (
            f"the test kit's {name} has other random weights than when {FIXTURE.name} was written: the saved "
            "models' frozen encoders would differ. Rewrite the fixture (write_fixture.py) with the old code."
        )
    monkeypatch.chdir(kit_dir)
    return Path(kit_dir)


def fixed_inputs() -> tuple[list[Image.Image], list[str], list[str]]:
    inputs = json.loads((FIXTURE / "inputs.json").read_text())
    images = [Image.new("RGB", (32 + 4 * i, 32), tuple(c)) for i, c in enumerate(inputs["colours"])]
    return images, inputs["queries"], inputs["texts"]


def test_vljepa_model_saved_before_the_move_loads_with_identical_outputs(in_kit_folder):
    from vljepa.modeling import VLJEPAModel
    from vljepa.persistence import load_pretrained

    expected = load_file(str(FIXTURE / "expected_outputs.safetensors"))
    images, queries, texts = fixed_inputs()
    model = VLJEPAModel.from_pretrained(FIXTURE / "vljepa")
    assert model.config.x_encoder_id == "tiny-clip-vision" and model.decoder is None
    torch.testing.assert_close(model.predict(images, queries), expected["vljepa.predict"], rtol=0, atol=1e-6)
    torch.testing.assert_close(model.embed_texts(texts), expected["vljepa.embed_texts"], rtol=0, atol=1e-6)
    torch.testing.assert_close(
        model.answer_scores(images, queries, texts), expected["vljepa.answer_scores"], rtol=0, atol=1e-6
    )
    assert isinstance(load_pretrained(FIXTURE / "vljepa"), VLJEPAModel)  # through the model_type registry


def test_dual_encoder_saved_before_the_move_loads_with_identical_outputs(in_kit_folder):
    from vljepa.baseline import DualEncoderModel
    from vljepa.persistence import load_pretrained

    expected = load_file(str(FIXTURE / "expected_outputs.safetensors"))
    images, _, texts = fixed_inputs()
    model = load_pretrained(FIXTURE / "dual-encoder")
    assert isinstance(model, DualEncoderModel)
    torch.testing.assert_close(model.embed_images(images), expected["dual-encoder.embed_images"], rtol=0, atol=1e-6)
    torch.testing.assert_close(model.embed_texts(texts), expected["dual-encoder.embed_texts"], rtol=0, atol=1e-6)


def test_folders_saved_before_the_move_load_through_automodel(in_kit_folder):
    from transformers import AutoModel

    from vljepa.persistence import register_auto_classes

    register_auto_classes()
    expected = load_file(str(FIXTURE / "expected_outputs.safetensors"))
    images, queries, texts = fixed_inputs()
    vljepa_model = AutoModel.from_pretrained(FIXTURE / "vljepa")
    torch.testing.assert_close(vljepa_model.predict(images, queries), expected["vljepa.predict"], rtol=0, atol=1e-6)
    dual = AutoModel.from_pretrained(FIXTURE / "dual-encoder")
    torch.testing.assert_close(dual.embed_texts(texts), expected["dual-encoder.embed_texts"], rtol=0, atol=1e-6)
