"""VL-JEPA model: shapes, bidirectional predictor, freezing, inference API, save/load round trip."""

from __future__ import annotations

import pytest
import torch
from PIL import Image
from test_vljepa_kit import tiny_config

from vljepa.configuration import VLJEPAConfig
from vljepa.modeling import VLJEPAModel

pytest_plugins = ["test_vljepa_kit"]  # shared fixtures: vl_tiny_st, tiny_model, one_torch_thread
pytestmark = pytest.mark.usefixtures("one_torch_thread")

COLOURS = ["red", "blue", "green", "yellow"]


def images(n: int = 4) -> list[Image.Image]:
    return [Image.new("RGB", (40 + 3 * i, 36), COLOURS[i % len(COLOURS)]) for i in range(n)]


def test_forward_shapes_for_every_vision_family(tiny_vision, tiny_llama3, vl_tiny_st):
    model = VLJEPAModel.from_config(tiny_config(tiny_vision, tiny_llama3, vl_tiny_st))
    out = model(images=images(3), queries=["what color is it?", "", "is there a circle?"],
                targets=["red", "a blue square", "yes"])
    assert out.predicted_embeddings.shape == (3, 16)
    assert out.target_embeddings.shape == (3, 16)
    assert out.loss.ndim == 0 and torch.isfinite(out.loss)
    assert out.loss_terms.prediction_to_target is not None and out.loss_terms.target_to_prediction is not None
    tokens, mask = model.x_encoder.encode(images(2))
    assert tokens.shape[0] == 2 and tokens.shape[2] == model.config.x_encoder_dim and mask.all()


@pytest.mark.parametrize(
    ("selection", "grid", "expected_tokens"), [("patch", None, 16), ("all", None, 17), ("patch", 2, 4)]
)
def test_token_selection_and_pooling(tiny_clip, tiny_llama3, vl_tiny_st, selection, grid, expected_tokens):
    # tiny CLIP: 32x32 images, patch 8 -> a 4x4 grid of patches plus one CLS token
    config = tiny_config(tiny_clip, tiny_llama3, vl_tiny_st, x_encoder_token_selection=selection,
                         x_encoder_pooled_grid_size=grid)
    model = VLJEPAModel.from_config(config)
    assert model.x_encoder.num_tokens_per_frame == expected_tokens


def test_video_frames_are_concatenated_in_time(tiny_model):
    frames = images(3)
    tokens, mask = tiny_model.x_encoder.encode([frames, frames[:1]])
    per_frame = tiny_model.x_encoder.num_tokens_per_frame
    assert tokens.shape[1] == 3 * per_frame
    assert mask[0].all() and mask[1].sum() == per_frame
    single, _ = tiny_model.x_encoder.encode(frames[:1])
    assert torch.allclose(tokens[1, :per_frame], single[0], atol=1e-5)
    assert tiny_model.predict([frames, frames[:1]], ["", "what happens?"]).shape == (2, 16)


def test_forward_contrasts_the_global_batch_when_given_a_gather(tiny_model):
    """The trainer passes ``gather_fn``/``rank`` with each call (the model keeps no distributed state):
    InfoNCE then contrasts every process's rows."""
    from vljepa.losses import text_ids

    torch.manual_seed(0)
    other_rank = iter([torch.randn(2, 16), torch.randn(2, 16), text_ids(["green", "yellow"])])  # gather order
    gathered = []

    def gather(tensor):
        gathered.append(tuple(tensor.shape))
        return torch.cat([tensor, next(other_rank).to(tensor.dtype)])

    kwargs = {"images": images(2), "queries": ["", ""], "targets": ["red", "blue"]}
    assert tiny_model(**kwargs).loss_terms.num_candidates == 2
    out = tiny_model(**kwargs, gather_fn=gather, rank=0)
    assert out.loss_terms.num_candidates == 4 and gathered == [(2, 16), (2, 16), (2,)]
    assert out.predicted_embeddings.shape == (2, 16)


def test_inference_api_shapes(tiny_model):
    imgs = images(3)
    emb = tiny_model.embed_images(imgs, batch_size=2)
    assert emb.shape == (3, 16)
    assert torch.allclose(emb.norm(dim=-1), torch.ones(3), atol=1e-5)
    assert tiny_model.embed_texts(["a", "b"], batch_size=1).shape == (2, 16)
    scores = tiny_model.answer_scores(imgs, ["q1", "q2", "q3"], [["red", "blue"], ["yes"], ["a", "b", "c"]])
    assert scores.shape == (3, 3)
    assert torch.isinf(scores[0, 2]) and torch.isinf(scores[1, 1:]).all() and torch.isfinite(scores[2]).all()
    answers = tiny_model.answer(imgs, ["q"] * 3, ["red", "blue"])
    assert len(answers) == 3 and set(answers) <= {"red", "blue"}
    ranking = tiny_model.rank_texts(imgs, ["red circle", "blue square", "yes"])
    assert ranking.scores.shape == (3, 3)
    assert torch.equal(ranking.indices[:, 0], ranking.scores.argmax(dim=1))


def test_predictor_is_bidirectional(tiny_model):
    """Changing a later query token changes the hidden state at an earlier (visual) position."""
    predictor = tiny_model.predictor
    predictor.eval()
    tokens, visual_mask = tiny_model.x_encoder.encode(images(1))
    ids, query_mask = predictor.tokenize(["what color is the shape"])
    changed = ids.clone()
    changed[0, -1] = (changed[0, -1] + 1) % predictor.token_embeddings.num_embeddings
    with torch.no_grad():
        first = predictor(tokens, visual_mask, ids, query_mask).hidden_states
        second = predictor(tokens, visual_mask, changed, query_mask).hidden_states
    assert not torch.allclose(first[0, 0], second[0, 0], atol=1e-6)  # position 0 saw the last token
    assert torch.allclose(first, first)  # sanity: deterministic


def test_padding_does_not_change_predictions(tiny_model):
    """A query predicted alone equals the same query padded in a batch with a longer one."""
    imgs = images(2)
    alone = tiny_model.predict(imgs[:1], ["red"])
    batched = tiny_model.predict(imgs, ["red", "is there a yellow rectangle on the left of a circle"])
    assert torch.allclose(alone[0], batched[0], atol=1e-5)


def test_frozen_parameters_do_not_move_and_trainable_ones_do(tiny_model):
    model = tiny_model
    model.train()
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    trainable = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    assert any(n.startswith("x_encoder.") for n in frozen)
    assert any(n.startswith("predictor.token_embeddings.") for n in frozen)
    assert any(n.startswith("y_encoder.encoder.") for n in trainable)  # y_encoder_frozen=False by default
    buffers = {n: b.clone() for n, b in model.x_encoder.named_buffers()}
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    out = model(images=images(4), queries=["", "q", "", "what"], targets=["red", "blue", "green", "yellow"])
    out.loss.backward()
    optimizer.step()
    for name, before in frozen.items():
        assert torch.equal(before, dict(model.named_parameters())[name]), name
    for name, before in buffers.items():  # e.g. batch-norm statistics of a frozen CNN
        assert torch.equal(before, dict(model.x_encoder.named_buffers())[name]), name
    params = dict(model.named_parameters())
    moved = [n for n, before in trainable.items() if not torch.equal(before, params[n])]
    for prefix in ("predictor.layers.", "predictor.visual_projection.", "predictor.output_projection.",
                   "y_encoder.projection.", "y_encoder.encoder.", "loss_fn.log_logit_scale"):
        assert any(n.startswith(prefix) for n in moved), prefix


@pytest.mark.parametrize("y_frozen", [False, True])
def test_save_load_round_trip(tmp_path, tiny_clip, tiny_llama3, vl_tiny_st, y_frozen):
    torch.manual_seed(1)
    model = VLJEPAModel.from_config(tiny_config(tiny_clip, tiny_llama3, vl_tiny_st, y_encoder_frozen=y_frozen))
    with torch.no_grad():  # make the saved weights differ from a fresh build
        for parameter in model.y_encoder.encoder.parameters():
            if not y_frozen:
                parameter.add_(0.01)
        model.predictor.output_projection.weight.mul_(1.5)
    model.save_pretrained(tmp_path / "saved")
    saved = set(__import__("safetensors.torch", fromlist=["load_file"]).load_file(tmp_path / "saved" / "model.safetensors"))
    assert not any(k.startswith("x_encoder.") for k in saved)  # frozen encoder referenced, not duplicated
    assert not any(k.startswith("predictor.token_embeddings.") for k in saved)
    assert any(k.startswith("y_encoder.encoder.") for k in saved) == (not y_frozen)  # a trained one is saved
    loaded = VLJEPAModel.from_pretrained(tmp_path / "saved")
    assert isinstance(loaded.config, VLJEPAConfig) and loaded.config.y_encoder_frozen == y_frozen
    imgs, questions = images(3), ["what color?", "", "is it red?"]
    assert torch.allclose(model.predict(imgs, questions), loaded.predict(imgs, questions), atol=1e-6)
    assert torch.allclose(model.embed_texts(["red", "a blue square"]), loaded.embed_texts(["red", "a blue square"]),
                          atol=1e-6)


def test_load_rejects_mismatched_weights(tmp_path, tiny_model):
    from safetensors.torch import load_file, save_file

    tiny_model.save_pretrained(tmp_path / "m")
    tensors = load_file(tmp_path / "m" / "model.safetensors")
    tensors["predictor.not_a_parameter"] = torch.zeros(1)
    save_file(tensors, tmp_path / "m" / "model.safetensors")
    with pytest.raises(ValueError, match="unexpected"):
        VLJEPAModel.from_pretrained(tmp_path / "m")


def test_fresh_predictor_and_layer_selection(tiny_clip, tiny_llama3, vl_tiny_st):
    fresh = VLJEPAModel.from_config(tiny_config(
        tiny_clip, tiny_llama3, vl_tiny_st, predictor_type="fresh", predictor_hidden_size=24,
        predictor_num_heads=2, predictor_intermediate_size=48, predictor_num_layers=1,
    ))  # fmt: skip
    assert fresh.predictor.token_embeddings.weight.requires_grad  # fresh embeddings train (and are saved)
    assert "predictor.token_embeddings." not in fresh.frozen_prefixes()
    assert fresh.predict(images(2), ["a", ""]).shape == (2, 16)
    with pytest.raises(ValueError, match="cannot take 2 layers starting at 1"):
        VLJEPAModel.from_config(tiny_config(tiny_clip, tiny_llama3, vl_tiny_st, predictor_first_layer=1))


def test_config_validation():
    with pytest.raises(ValueError, match="loss_type"):
        VLJEPAConfig(loss_type="mse")
    with pytest.raises(ValueError, match="predictor_num_layers"):
        VLJEPAConfig(predictor_num_layers=0)


def test_model_type_registry_names_the_real_classes():
    """persistence names the model classes by string (it sits below them); the names must stay importable."""
    from vljepa.baseline import DualEncoderConfig, DualEncoderModel
    from vljepa.persistence import model_classes

    assert model_classes() == {VLJEPAConfig.model_type: VLJEPAModel, DualEncoderConfig.model_type: DualEncoderModel}
