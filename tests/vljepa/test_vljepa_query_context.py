"""The predictor's query context: the LM's lower layers read the query (causal, frozen, cached per query)."""

from __future__ import annotations

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file
from test_vljepa_kit import tiny_config
from transformers import AutoModelForCausalLM

from vljepa.configuration import VLJEPAConfig
from vljepa.modeling import VLJEPAModel

pytest_plugins = ["test_vljepa_kit"]
pytestmark = pytest.mark.usefixtures("one_torch_thread")

QUERIES = ["what color is the shape?", "is there a circle?", "what color is the shape?", "name it", ""]


def prefix_model(tiny_clip, tiny_llama3, vl_tiny_st, **overrides) -> VLJEPAModel:
    torch.manual_seed(0)
    config = tiny_config(tiny_clip, tiny_llama3, vl_tiny_st, predictor_first_layer=1, predictor_num_layers=1,
                         predictor_query_context="lm_prefix", **overrides)
    return VLJEPAModel.from_config(config)


def images(n: int) -> list[Image.Image]:
    return [Image.new("RGB", (32, 32), (40 * i, 200 - 30 * i, 90)) for i in range(n)]


def test_cached_states_equal_the_lm_hidden_states_at_that_depth(tiny_clip, tiny_llama3, vl_tiny_st):
    model = prefix_model(tiny_clip, tiny_llama3, vl_tiny_st)
    context = model.predictor.query_context
    assert context is not None and len(context.layers) == 1
    ids, mask = model.predictor.tokenize(QUERIES)
    first = context(ids, mask)          # computes and fills the cache
    second = context(ids, mask)         # served from the cache
    assert torch.equal(first, second)
    assert len(context._cache) == len(set(QUERIES) - {""})  # equal questions share one entry; "" has none
    context.clear_cache()
    ids_alone, mask_alone = model.predictor.tokenize(QUERIES[3:4])  # first seen alone, without padding
    assert torch.equal(context(ids_alone, mask_alone)[0], first[3, : int(mask_alone.sum())])
    lm = AutoModelForCausalLM.from_pretrained(tiny_llama3, dtype=torch.float32).eval()
    for row, query in enumerate(QUERIES):
        n = int(mask[row].sum())
        assert not first[row, n:].any()  # padding holds zeros
        if n == 0:
            continue
        with torch.no_grad():
            reference = lm(input_ids=ids[row : row + 1, :n], output_hidden_states=True).hidden_states[1][0]
        torch.testing.assert_close(first[row, :n], reference, atol=1e-5, rtol=1e-5)


def test_a_query_gives_the_same_prediction_alone_or_in_any_batch(tiny_clip, tiny_llama3, vl_tiny_st):
    model = prefix_model(tiny_clip, tiny_llama3, vl_tiny_st).eval()
    imgs = images(len(QUERIES))
    together = model.predict(imgs, QUERIES)
    model.predictor.query_context.clear_cache()
    alone = torch.cat([model.predict([image], [query]) for image, query in zip(imgs, QUERIES)])
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=1e-5)


def test_only_the_layers_above_the_context_train(tiny_clip, tiny_llama3, vl_tiny_st):
    model = prefix_model(tiny_clip, tiny_llama3, vl_tiny_st).train()
    out = model(images=images(3), queries=QUERIES[:3], targets=["red", "yes", "blue"])
    out.loss.backward()
    context_params = list(model.predictor.query_context.parameters())
    assert context_params and all(not p.requires_grad and p.grad is None for p in context_params)
    assert all(p.grad is not None for p in model.predictor.layers.parameters())


def test_save_and_load_round_trip_without_the_frozen_context(tiny_clip, tiny_llama3, vl_tiny_st, tmp_path):
    model = prefix_model(tiny_clip, tiny_llama3, vl_tiny_st).eval()
    with torch.no_grad():
        for p in model.predictor.layers.parameters():
            p.add_(0.01 * torch.randn_like(p))  # "trained": differs from the LM's own layer
    expected = model.predict(images(3), QUERIES[:3])
    model.save_pretrained(tmp_path / "m")
    saved = load_file(tmp_path / "m" / "model.safetensors")
    assert not [k for k in saved if k.startswith("predictor.query_context.")]
    assert [k for k in saved if k.startswith("predictor.layers.")]
    loaded = VLJEPAModel.from_pretrained(tmp_path / "m")
    assert loaded.config.predictor_query_context == "lm_prefix"
    torch.testing.assert_close(loaded.predict(images(3), QUERIES[:3]), expected, atol=1e-6, rtol=1e-6)


def test_embeddings_mode_is_the_default_and_has_no_context(tiny_model):
    assert tiny_model.config.predictor_query_context == "embeddings"
    assert tiny_model.predictor.query_context is None


@pytest.mark.parametrize(("overrides", "match"), [
    ({"predictor_type": "fresh"}, "set predictor_query_context_layers >= 1"),
    ({"predictor_query_context_layers": 0}, "predictor_query_context_layers must be >= 1"),
    ({"train_query_embeddings": True}, "train_query_embeddings must be false"),
    ({"predictor_query_context": "cached"}, "predictor_query_context must be one of"),
])
def test_bad_combinations_are_refused_by_the_config(overrides, match):
    values = {"predictor_query_context": "lm_prefix", **overrides}
    with pytest.raises(ValueError, match=match):
        VLJEPAConfig(**values)


def test_a_context_needs_layers_below_the_predictor(tiny_clip, tiny_llama3, vl_tiny_st):
    config = tiny_config(tiny_clip, tiny_llama3, vl_tiny_st, predictor_first_layer=0, predictor_num_layers=2,
                         predictor_query_context="lm_prefix")
    with pytest.raises(ValueError, match="set predictor_first_layer > 0"):
        VLJEPAModel.from_config(config)


def test_a_query_over_the_limit_is_truncated_with_a_warning_and_counted(tiny_model, caplog):
    limit = tiny_model.config.predictor_max_query_tokens
    ids = tiny_model.predictor.tokenize(["circle " * (limit + 5)])[0]
    short = tiny_model.predictor.tokenizer.decode(ids[0])
    with caplog.at_level("WARNING", logger="vljepa.encoders.predictor"):
        long_prediction = tiny_model.predict(images(1), ["circle " * (limit + 5)])
    assert ids.shape == (1, limit)
    assert tiny_model.num_truncated_queries == 2  # tokenize above, then predict
    assert "longer than predictor_max_query_tokens" in caplog.text
    torch.testing.assert_close(long_prediction, tiny_model.predict(images(1), [short]))


def test_a_fresh_predictor_reads_the_query_through_frozen_lm_layers(tiny_clip, tiny_llama3, vl_tiny_st, tmp_path):
    torch.manual_seed(0)
    config = tiny_config(tiny_clip, tiny_llama3, vl_tiny_st, predictor_type="fresh", predictor_hidden_size=16,
                         predictor_num_heads=2, predictor_intermediate_size=32, predictor_first_layer=1,
                         predictor_query_context="lm_prefix")
    model = VLJEPAModel.from_config(config)
    assert len(model.predictor.query_context.layers) == 1
    out = model(images=images(3), queries=QUERIES[:3], targets=["red", "yes", "blue"])
    out.loss.backward()
    assert model.predictor.query_projection[1].weight.grad is not None
    assert all(p.grad is None for p in model.predictor.query_context.parameters())
    model.eval()
    expected = model.predict(images(3), QUERIES[:3])
    model.save_pretrained(tmp_path / "fresh")
    saved = load_file(tmp_path / "fresh" / "model.safetensors")
    assert not [k for k in saved if k.startswith(("predictor.query_context.", "predictor.token_embeddings."))]
    torch.testing.assert_close(VLJEPAModel.from_pretrained(tmp_path / "fresh").predict(images(3), QUERIES[:3]),
                               expected, atol=1e-6, rtol=1e-6)


def test_the_residual_context_starts_as_the_embeddings_predictor(tiny_clip, tiny_llama3, vl_tiny_st, tmp_path):
    """'lm_residual': raw token embeddings + a zero-initialised projection of the context, so the untrained model
    predicts exactly what the embeddings-only model with the same weights predicts; training moves the projection."""
    torch.manual_seed(0)
    residual = VLJEPAModel.from_config(tiny_config(
        tiny_clip, tiny_llama3, vl_tiny_st, predictor_first_layer=1, predictor_num_layers=1,
        predictor_query_context="lm_residual", predictor_query_context_layers=1))
    torch.manual_seed(0)
    plain = VLJEPAModel.from_config(tiny_config(
        tiny_clip, tiny_llama3, vl_tiny_st, predictor_first_layer=1, predictor_num_layers=1))
    plain.load_state_dict(residual.state_dict(), strict=False)
    residual.eval(), plain.eval()
    torch.testing.assert_close(residual.predict(images(3), QUERIES[:3]), plain.predict(images(3), QUERIES[:3]))
    residual.train()
    residual(images=images(3), queries=QUERIES[:3], targets=["red", "yes", "blue"]).loss.backward()
    assert residual.predictor.query_projection[1].weight.grad.abs().sum() > 0
    residual.save_pretrained(tmp_path / "r")
    assert VLJEPAModel.from_pretrained(tmp_path / "r").config.predictor_query_context == "lm_residual"


def _predict_keeping_the_first_layer_input(model, n):
    """``model.predict`` on ``n`` images and queries, and the hidden states its first predictor layer received."""
    seen = {}

    def keep_input(module, args, kwargs):
        seen["hidden"] = kwargs["hidden_states"] if "hidden_states" in kwargs else args[0]

    handle = model.predictor.layers[0].register_forward_pre_hook(keep_input, with_kwargs=True)
    try:
        return model.predict(images(n), QUERIES[:n]), seen["hidden"]
    finally:
        handle.remove()


def test_the_normed_residual_keeps_every_query_token_at_the_embeddings_scale(
    tiny_clip, tiny_llama3, vl_tiny_st, tmp_path
):
    """'lm_residual_normed': embedding + context, each token rescaled to the embedding matrix's RMS, however large
    the trained context projection grows; saved and restored with the model."""
    torch.manual_seed(0)
    model = VLJEPAModel.from_config(tiny_config(
        tiny_clip, tiny_llama3, vl_tiny_st, predictor_first_layer=1, predictor_num_layers=1,
        predictor_query_context="lm_residual_normed", predictor_query_context_layers=1)).eval()
    predictor = model.predictor
    with torch.no_grad():
        predictor.query_projection[1].weight.normal_(std=10.0)  # a context projection grown far too large
    before, first_layer_input = _predict_keeping_the_first_layer_input(model, 2)
    embedding_rms = predictor.token_embeddings.weight.pow(2).mean().sqrt()
    query_tokens = first_layer_input[:, -3:]  # the last query positions (both queries have more than 3 tokens)
    token_rms = query_tokens.pow(2).mean(dim=-1).sqrt()
    token_rms = token_rms[token_rms > 0]  # padding (a zero embedding row, masked out) stays zero
    assert token_rms.numel() >= 4
    torch.testing.assert_close(token_rms, torch.full_like(token_rms, float(embedding_rms)), rtol=1e-4, atol=1e-6)
    model.save_pretrained(tmp_path / "n")
    loaded = VLJEPAModel.from_pretrained(tmp_path / "n").eval()
    assert loaded.config.predictor_query_context == "lm_residual_normed" and loaded.predictor.query_rescale
    torch.testing.assert_close(loaded.predict(images(2), QUERIES[:2]), before, atol=1e-6, rtol=1e-6)


def test_the_concat_context_keeps_raw_embeddings_and_lm_states_as_separate_tokens(
    tiny_clip, tiny_llama3, vl_tiny_st, tmp_path
):
    """'lm_concat': [visual ; raw query embeddings ; projected LM states]; saved and restored with the model."""
    torch.manual_seed(0)
    model = VLJEPAModel.from_config(tiny_config(
        tiny_clip, tiny_llama3, vl_tiny_st, predictor_first_layer=1, predictor_num_layers=1,
        predictor_query_context="lm_concat", predictor_query_context_layers=1)).eval()
    predictor = model.predictor
    before, hidden = _predict_keeping_the_first_layer_input(model, 2)
    ids, mask = predictor.tokenize(QUERIES[:2])
    q = ids.shape[1]
    with torch.no_grad():
        raw = predictor.token_embeddings(ids)
        context = predictor.query_projection(predictor.query_context(ids, mask))
    torch.testing.assert_close(hidden[:, -2 * q : -q], raw)
    torch.testing.assert_close(hidden[:, -q:], context)
    assert context.abs().sum() > 0  # not zero-initialised: the context tokens carry the LM's reading from step 0
    model.save_pretrained(tmp_path / "c")
    loaded = VLJEPAModel.from_pretrained(tmp_path / "c").eval()
    assert loaded.config.predictor_query_context == "lm_concat" and loaded.predictor.query_concat
    torch.testing.assert_close(loaded.predict(images(2), QUERIES[:2]), before, atol=1e-6, rtol=1e-6)


def test_prefilled_states_match_the_states_computed_one_query_at_a_time(tiny_clip, tiny_llama3, vl_tiny_st):
    """The trainer prefills every question of a run at once (equal lengths batched); the states are those that
    the lazy, one-query-at-a-time path computes."""
    predictor = prefix_model(tiny_clip, tiny_llama3, vl_tiny_st).predictor
    ids, mask = predictor.tokenize(QUERIES)
    one_at_a_time = predictor.query_context(ids, mask)
    predictor.query_context.clear_cache()
    assert predictor.prefill_query_context(QUERIES) == len(set(QUERIES) - {""})
    assert predictor.prefill_query_context(QUERIES) == 0  # every one cached already
    torch.testing.assert_close(predictor.query_context(ids, mask), one_at_a_time, atol=1e-5, rtol=1e-5)


def test_a_prefill_larger_than_the_cache_is_skipped_with_a_warning(tiny_clip, tiny_llama3, vl_tiny_st, caplog):
    predictor = prefix_model(tiny_clip, tiny_llama3, vl_tiny_st).predictor
    predictor.query_context.max_entries = 2  # fewer than the 3 distinct non-empty queries
    with caplog.at_level("WARNING", logger="vljepa.encoders.query_context"):
        assert predictor.prefill_query_context(QUERIES) == 0
    assert "would overflow the cache of 2" in caplog.text
    ids, mask = predictor.tokenize(QUERIES)
    assert predictor.query_context(ids, mask).shape[:2] == ids.shape  # computed as they come instead
