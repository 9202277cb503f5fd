"""The tiny-model kit loads through the standard Auto* APIs and runs a forward pass."""

import torch
from PIL import Image
from transformers import AutoImageProcessor, AutoModel, AutoModelForCausalLM, AutoTokenizer


def test_tiny_vision_loads_and_runs(tiny_vision):
    model = AutoModel.from_pretrained(tiny_vision)
    processor = AutoImageProcessor.from_pretrained(tiny_vision)
    pixels = processor(images=[Image.new("RGB", (50, 40), "red")], return_tensors="pt")["pixel_values"]
    assert pixels.shape[-2:] == (32, 32)
    with torch.no_grad():
        out = model(pixel_values=pixels)
    assert out.last_hidden_state.shape[0] == 1


def test_tiny_sentence_transformer_embeds(tiny_st):
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(tiny_st), device="cpu")
    emb = model.encode(["a red circle", "a blue square"], convert_to_tensor=True)
    assert emb.shape == (2, 32)
    assert torch.allclose(emb.norm(dim=-1), torch.ones(2), atol=1e-5)


def test_tiny_llm_chat_template_and_forward(tiny_llm):
    tok = AutoTokenizer.from_pretrained(tiny_llm)
    model = AutoModelForCausalLM.from_pretrained(tiny_llm)
    messages = [{"role": "user", "content": "what color is it?"}, {"role": "assistant", "content": "red"}]
    ids = tok.apply_chat_template(messages, tokenize=True, return_dict=True, return_tensors="pt")["input_ids"]
    text = tok.decode(ids[0])
    assert "what color is it?" in text and "red" in text
    logits = model(input_ids=ids).logits
    assert logits.shape == (1, ids.shape[1], len(tok))
