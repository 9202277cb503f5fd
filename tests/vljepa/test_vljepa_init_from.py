"""``init_from``: a run starts from another run's trained tensors (curricula), and refuses a model that does not fit."""

from __future__ import annotations

import pytest
import torch
from PIL import Image
from test_vljepa_kit import tiny_config

from vljepa.modeling import VLJEPAModel

pytest_plugins = ["test_vljepa_kit"]
pytestmark = pytest.mark.usefixtures("one_torch_thread")

QUERIES = ["what color is the shape?", "is there a circle?"]
IMAGES = [Image.new("RGB", (32, 32), (200, 30, 40)), Image.new("RGB", (32, 32), (20, 90, 200))]


def _model(tiny_clip, tiny_llama3, vl_tiny_st, seed=0, **overrides) -> VLJEPAModel:
    torch.manual_seed(seed)
    layers = {"predictor_first_layer": 1, "predictor_num_layers": 1, **overrides}
    return VLJEPAModel.from_config(tiny_config(tiny_clip, tiny_llama3, vl_tiny_st, **layers))


@pytest.fixture
def saved_embeddings_model(tmp_path, tiny_clip, tiny_llama3, vl_tiny_st):
    model = _model(tiny_clip, tiny_llama3, vl_tiny_st, seed=1)
    with torch.no_grad():  # "trained": every trainable tensor moved away from its initialisation
        for parameter in model.parameters():
            if parameter.requires_grad:
                parameter.add_(0.05 * torch.randn_like(parameter))
    model.save_pretrained(tmp_path / "stage1")
    return model.eval(), tmp_path / "stage1"


def test_a_residual_query_context_continues_an_embeddings_model(saved_embeddings_model, tiny_clip, tiny_llama3,
                                                                 vl_tiny_st):
    first, folder = saved_embeddings_model
    second = _model(tiny_clip, tiny_llama3, vl_tiny_st, seed=2, predictor_query_context="lm_residual",
                    predictor_query_context_layers=1)
    fresh = second.load_initial_weights(folder)
    assert sorted(fresh) == sorted(k for k in second.state_dict() if k.startswith("predictor.query_projection."))
    for key, value in first.persistent_state_dict().items():
        assert torch.equal(second.state_dict()[key], value), key
    # The residual projection starts at zero, so the continued model first predicts exactly what the first did.
    torch.testing.assert_close(second.eval().predict(IMAGES, QUERIES), first.predict(IMAGES, QUERIES))


@pytest.mark.parametrize(("overrides", "message"), [
    ({"predictor_first_layer": 0}, "predictor_first_layer: saved 1, recipe 0"),
    ({"embedding_dim": 8}, "embedding_dim"),
    ({"visual_projection": "mlp"}, "visual_projection"),
])
def test_a_model_that_does_not_fit_is_refused(saved_embeddings_model, tiny_clip, tiny_llama3, vl_tiny_st,
                                              overrides, message):
    _, folder = saved_embeddings_model
    other = _model(tiny_clip, tiny_llama3, vl_tiny_st, **overrides)
    before = {k: v.clone() for k, v in other.state_dict().items()}
    with pytest.raises(ValueError, match=message):
        other.load_initial_weights(folder)
    assert all(torch.equal(v, before[k]) for k, v in other.state_dict().items())  # nothing half-copied


def test_a_folder_without_a_saved_model_is_named(tmp_path, tiny_clip, tiny_llama3, vl_tiny_st):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="empty.*finished vljepa run"):
        _model(tiny_clip, tiny_llama3, vl_tiny_st).load_initial_weights(tmp_path / "empty")


def test_a_missing_earlier_stage_is_named_with_what_to_do(tmp_path, tiny_clip, tiny_llama3, vl_tiny_st):
    with pytest.raises(FileNotFoundError, match="runs/stage1/model.*no such folder.*train that run first"):
        _model(tiny_clip, tiny_llama3, vl_tiny_st).load_initial_weights("runs/stage1/model")
