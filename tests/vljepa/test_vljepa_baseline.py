"""The dual-encoder baseline: same inference API as VL-JEPA, question folded into the text, round trip."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from vljepa.baseline import DualEncoderConfig, DualEncoderModel

pytest_plugins = ["test_vljepa_kit"]  # shared fixtures: vl_tiny_st, tiny_model, one_torch_thread
pytestmark = pytest.mark.usefixtures("one_torch_thread")

@pytest.fixture
def dual(tiny_clip, vl_tiny_st):
    torch.manual_seed(0)
    return DualEncoderModel.from_config(
        DualEncoderConfig(x_encoder_id=str(tiny_clip), y_encoder_id=str(vl_tiny_st), embedding_dim=16)
    )


def images(n: int) -> list[Image.Image]:
    return [Image.new("RGB", (32, 32), colour) for colour in ["red", "blue", "green", "yellow"][:n]]


def test_inference_api_matches_vljepa(dual):
    from eval.protocol import EmbeddingModel

    assert isinstance(dual, EmbeddingModel)
    assert dual.embed_images(images(3)).shape == (3, 16)
    assert dual.embed_texts(["a", "b"]).shape == (2, 16)
    scores = dual.answer_scores(images(2), ["what color?", "is it red?"], [["red", "blue", "green"], ["yes", "no"]])
    assert scores.shape == (2, 3) and torch.isinf(scores[1, 2])
    assert dual.answer(images(2), ["q", "q"], ["red", "blue"])[0] in {"red", "blue"}
    assert dual.rank_texts(images(2), ["a", "b", "c"]).indices.shape == (2, 3)
    with pytest.raises(ValueError, match="cannot condition"):
        dual.rank_texts(images(1), ["a"], queries=["what?"])


def test_vqa_scores_the_question_with_each_candidate(dual):
    imgs = images(1)
    scores = dual.answer_scores(imgs, ["what color is it?"], [["red", "blue"]])
    texts = dual.embed_texts(["what color is it? red", "what color is it? blue"])
    assert torch.allclose(scores[0], texts @ dual.embed_images(imgs)[0], atol=1e-5)
    assert dual.compose(["", "q?"], ["a red circle", "yes"]) == ["a red circle", "q? yes"]


def test_training_step_and_round_trip(tmp_path, dual):
    optimizer = torch.optim.AdamW([p for p in dual.parameters() if p.requires_grad], lr=1e-2)
    frozen = {n: p.clone() for n, p in dual.x_encoder.named_parameters()}
    dual.train()
    out = dual(images=images(4), queries=["", "", "what color?", "what color?"], targets=["red", "blue", "green", "red"])
    assert out.loss_terms.num_candidates == 4 and torch.isfinite(out.loss)
    out.loss.backward()
    optimizer.step()
    assert all(torch.equal(p, frozen[n]) for n, p in dual.x_encoder.named_parameters())
    dual.save_pretrained(tmp_path / "dual")
    loaded = DualEncoderModel.from_pretrained(tmp_path / "dual")
    assert torch.allclose(dual.embed_images(images(2)), loaded.embed_images(images(2)), atol=1e-6)
    assert torch.allclose(dual.embed_texts(["x y"]), loaded.embed_texts(["x y"]), atol=1e-6)


def test_config_validation():
    with pytest.raises(ValueError, match="text_template"):
        DualEncoderConfig(text_template="{question}")
