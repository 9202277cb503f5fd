"""LLM-JEPA on the real bundled SmolLM2-135M-Instruct and generated regex data (ChatML with a default system
prompt, a 49k-token BPE vocabulary): views are token prefixes and packed == separate."""

import pytest
import torch

pytestmark = [pytest.mark.bundled, pytest.mark.slow]


@pytest.fixture(scope="module")
def smollm2():
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from jepa_core.resolver import resolve_model

    folder = resolve_model("HuggingFaceTB/SmolLM2-135M-Instruct")
    return AutoTokenizer.from_pretrained(folder), AutoModelForCausalLM.from_pretrained(folder)


def test_regex_views_and_packed_equals_separate(smollm2):
    from llm_jepa.arguments import JepaObjectiveConfig
    from llm_jepa.data import generate_regex_synth
    from llm_jepa.loading import add_pred_tokens
    from llm_jepa.objective import llm_jepa_loss
    from llm_jepa.packing import LLMJepaCollator
    from llm_jepa.views import ViewTokenizer, tokenize_views_dataset

    tokenizer, model = smollm2
    pred_ids = add_pred_tokens(tokenizer, model, 1)
    data = generate_regex_synth(3, seed=0)
    features = tokenize_views_dataset(data, ViewTokenizer(tokenizer, max_length=256))
    rows = [features[i] for i in range(len(features))]
    assert all(r["text_prefix_length"] == len(r["text_input_ids"]) > 0 for r in rows)
    labelled = tokenizer.decode([t for t in rows[0]["labels"] if t != -100])
    assert labelled.startswith(data[0]["messages"][-1]["content"]) and labelled.rstrip().endswith("<|im_end|>")

    model.eval()
    losses = {}
    with torch.no_grad():
        for mode in ("separate", "packed"):
            batch = LLMJepaCollator(pred_token_ids=pred_ids, pad_token_id=tokenizer.pad_token_id, mode=mode)(rows)
            out = llm_jepa_loss(model, batch, JepaObjectiveConfig(jepa_mode=mode, num_pred_tokens=1))
            losses[mode] = (out.lm_loss.item(), out.jepa_loss.item())
    assert losses["packed"] == pytest.approx(losses["separate"], abs=1e-4)
    assert 0 < losses["packed"][1] < 2
