"""Packed (one forward, block mask) == separate (three forwards): loss and gradients, both chat templates."""

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from llm_jepa import packing
from llm_jepa.arguments import JepaObjectiveConfig
from llm_jepa.loading import add_pred_tokens
from llm_jepa.objective import last_token_states, llm_jepa_loss
from llm_jepa.packing import (
    BLOCK_CODE,
    BLOCK_CONVERSATION,
    BLOCK_PRED,
    BLOCK_TEXT,
    LLMJepaCollator,
    block_attention_mask,
    common_prefix_length,
    pack_segments,
)
from llm_jepa.views import ViewTokenizer

EXAMPLES = [
    [{"role": "user", "content": "write a regex for dog"}, {"role": "assistant", "content": "(dog){2,}"}],
    [
        {"role": "system", "content": "the answer is 42"},
        {"role": "user", "content": "what color is the shape?"},
        {"role": "assistant", "content": "the shape is green. how many triangles"},
    ],
    [{"role": "user", "content": "select name from users where age > 30"},
     {"role": "assistant", "content": "[0-9]+ ([a-z]*)"}],
]


def _setup(path, k, attn="sdpa", text_view="prompt"):
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, attn_implementation=attn)
    model.eval()  # no dropout: the two modes must see identical computations
    pred_ids = add_pred_tokens(tokenizer, model, k)
    views = ViewTokenizer(tokenizer, text_view=text_view, max_length=256)
    features = [views(m).as_dict() for m in EXAMPLES]
    return tokenizer, model, pred_ids, features


def _run(model, features, pred_ids, pad_id, **objective):
    config = JepaObjectiveConfig(**objective)
    collate = LLMJepaCollator(pred_token_ids=pred_ids, pad_token_id=pad_id, mode=config.jepa_mode,
                              stop_gradient=config.jepa_stop_gradient)
    model.zero_grad()
    out = llm_jepa_loss(model, collate(features), config)
    out.loss.backward()
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}
    return out, grads


def _assert_same(a, b):
    (out_a, grads_a), (out_b, grads_b) = a, b
    for term in ("loss", "lm_loss", "jepa_loss"):
        assert getattr(out_a, term).item() == pytest.approx(getattr(out_b, term).item(), abs=1e-4), term
    assert grads_a.keys() == grads_b.keys()
    for name in grads_a:
        torch.testing.assert_close(grads_a[name], grads_b[name], atol=1e-4, rtol=1e-3, msg=name)


# text_view="user" with a system turn makes the Text view a non-prefix: packed mode's fallback block.
@pytest.mark.parametrize(
    "k, text_view, stop_gradient",
    [(0, "prompt", False), (2, "prompt", False), (2, "user", False), (2, "prompt", True), (0, "user", True)],
)
def test_packed_equals_separate(tiny_llm, k, text_view, stop_gradient):
    tokenizer, model, pred_ids, features = _setup(tiny_llm, k, text_view=text_view)
    assert any(f["text_prefix_length"] == 0 for f in features) == (text_view == "user")
    runs = [
        _run(model, features, pred_ids, tokenizer.pad_token_id, jepa_mode=mode, num_pred_tokens=k,
             jepa_text_view=text_view, jepa_stop_gradient=stop_gradient)
        for mode in ("separate", "packed")
    ]
    _assert_same(*runs)
    assert runs[0][0].jepa_loss.item() > 0


def test_packed_equals_separate_with_code_views_over_several_rows(tiny_llama3):
    tokenizer, model, pred_ids, features = _setup(tiny_llama3, 1)
    features = features * 3  # 9 Code views: more than one Code row holds them
    batch = LLMJepaCollator(pred_token_ids=pred_ids, pad_token_id=tokenizer.pad_token_id, mode="packed")(features)
    assert batch["input_ids"].shape[0] - len(features) >= 2 and len(set(batch["code_row"].tolist())) >= 2
    runs = [_run(model, features, pred_ids, tokenizer.pad_token_id, jepa_mode=mode, num_pred_tokens=1)
            for mode in ("separate", "packed")]
    _assert_same(*runs)
    torch.testing.assert_close(runs[0][0].target, runs[1][0].target, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("row_tokens", [packing.NO_GRAD_CODE_ROW_TOKENS, 0])  # 0: rows of the longest view
def test_stop_gradient_runs_the_shared_prefix_code_rows(tiny_llama3, monkeypatch, row_tokens):
    monkeypatch.setattr(packing, "NO_GRAD_CODE_ROW_TOKENS", row_tokens)
    tokenizer, model, pred_ids, features = _setup(tiny_llama3, 1)
    features = features * 3
    codes = [f["code_input_ids"] for f in features]
    prefix = common_prefix_length(codes)
    batch = LLMJepaCollator(pred_token_ids=pred_ids, pad_token_id=tokenizer.pad_token_id, mode="packed",
                            stop_gradient=True)(features)
    assert prefix > 0 and batch["input_ids"].shape[0] == len(features)  # no Code rows in the trained forward
    rows, width = batch["code_input_ids"].shape
    if row_tokens:  # all nine views in one row after one copy of the prefix: no padding at all
        assert (rows, width) == (1, prefix + sum(len(code) - prefix for code in codes))
    else:
        assert rows >= 2 and width == max(len(code) for code in codes)
    runs = [_run(model, features, pred_ids, tokenizer.pad_token_id, jepa_mode=mode, num_pred_tokens=1,
                 jepa_stop_gradient=True) for mode in ("separate", "packed")]
    _assert_same(*runs)
    torch.testing.assert_close(runs[0][0].target, runs[1][0].target, atol=1e-5, rtol=1e-4)
    assert not runs[1][0].target.requires_grad


@pytest.mark.parametrize("jepa_loss", ["l2", "infonce"])
def test_packed_equals_separate_eager_backend_and_other_distances(tiny_llama3, jepa_loss):
    tokenizer, model, pred_ids, features = _setup(tiny_llama3, 1, attn="eager")
    runs = [_run(model, features, pred_ids, tokenizer.pad_token_id, jepa_mode=mode, num_pred_tokens=1,
                 jepa_loss=jepa_loss) for mode in ("separate", "packed")]
    _assert_same(*runs)


def test_stop_gradient_blocks_the_target_path(tiny_llama3):
    tokenizer, model, pred_ids, features = _setup(tiny_llama3, 1)
    collate = LLMJepaCollator(pred_token_ids=pred_ids, pad_token_id=tokenizer.pad_token_id, mode="separate")
    batch = collate(features)
    for stop in (False, True):
        out = llm_jepa_loss(model, batch, JepaObjectiveConfig(jepa_mode="separate", jepa_stop_gradient=stop))
        assert out.target.requires_grad is (not stop)
        assert out.prediction.requires_grad


def test_k0_predictor_is_identity(tiny_llm):
    tokenizer, model, pred_ids, features = _setup(tiny_llm, 0)
    assert pred_ids == []
    batch = LLMJepaCollator(pred_token_ids=[], pad_token_id=tokenizer.pad_token_id, mode="packed")(features)
    out = llm_jepa_loss(model, batch, JepaObjectiveConfig(num_pred_tokens=0))
    with torch.no_grad():
        for row, feature in enumerate(features):
            ids = torch.tensor([feature["text_input_ids"]])
            hidden = model(input_ids=ids, output_hidden_states=True).hidden_states[-1]
            enc_text = last_token_states(hidden, torch.ones_like(ids))[0]
            torch.testing.assert_close(out.prediction[row], enc_text, atol=1e-5, rtol=1e-4)
            code = torch.tensor([feature["code_input_ids"]])
            enc_code = model(input_ids=code, output_hidden_states=True).hidden_states[-1][0, -1]
            torch.testing.assert_close(out.target[row], enc_code, atol=1e-5, rtol=1e-4)


def test_skipping_the_jepa_term_is_plain_fine_tuning(tiny_llm):
    tokenizer, model, pred_ids, features = _setup(tiny_llm, 2)
    for mode in ("separate", "packed"):
        batch = LLMJepaCollator(pred_token_ids=pred_ids, pad_token_id=tokenizer.pad_token_id, mode=mode)(features)
        out = llm_jepa_loss(model, batch, JepaObjectiveConfig(jepa_mode=mode, num_pred_tokens=2),
                            compute_jepa=False)
        assert out.jepa_loss is None
        plain = LLMJepaCollator(pred_token_ids=[], pad_token_id=tokenizer.pad_token_id, mode="separate")(features)
        reference = model(input_ids=plain["input_ids"], attention_mask=plain["attention_mask"],
                          labels=plain["labels"]).loss
        assert out.loss.item() == pytest.approx(reference.item(), abs=1e-5)


def test_block_mask_structure():
    # conversation of 4 (Text prefix = first 2), one Text-fallback row, k = 2, code of 2
    block = torch.tensor([[BLOCK_CONVERSATION] * 4 + [0, 0] + [BLOCK_PRED] * 2 + [BLOCK_CODE] * 2,
                          [BLOCK_CONVERSATION] * 3 + [0] + [BLOCK_TEXT] * 2 + [BLOCK_PRED] * 2 + [BLOCK_CODE, 0]])
    allowed = block_attention_mask(block, torch.tensor([BLOCK_CONVERSATION, BLOCK_TEXT]), torch.tensor([1, 5]))[:, 0]
    row = allowed[0]
    assert row[3, :4].all() and not row[3, 4:].any()            # conversation: causal within itself
    assert row[6].tolist() == [True, True] + [False] * 4 + [True] + [False] * 3  # PRED_1 -> Text prefix, itself
    assert row[7, 6] and row[7, :2].all() and not row[7, 2:4].any()
    assert row[9].tolist() == [False] * 8 + [True, True]         # Code: only itself
    fallback = allowed[1]
    assert fallback[6, 4:6].all() and not fallback[6, :4].any()  # PRED reads the fallback Text block only
    assert fallback[3].tolist() == [False] * 3 + [True] + [False] * 6  # padding attends to itself only


def test_code_segments_read_the_shared_prefix_and_themselves_only():
    # one example row (conversation of 3) and one Code row: prefix of 2, segment A of 2, segment B of 1
    code = BLOCK_CODE
    block = torch.tensor([[BLOCK_CONVERSATION] * 3 + [0, 0], [code, code, code + 1, code + 1, code + 2]])
    allowed = block_attention_mask(block, torch.tensor([BLOCK_CONVERSATION]), torch.tensor([1]))[:, 0]
    code_row = allowed[1]
    assert code_row[1].tolist() == [True, True, False, False, False]  # the prefix is causal in itself
    assert code_row[3].tolist() == [True, True, True, True, False]  # segment A: prefix + itself, causal
    assert code_row[4].tolist() == [True, True, False, False, True]  # segment B never reads segment A
    assert allowed[0, 2].tolist() == [True, True, True, False, False]
    assert common_prefix_length([[1, 2, 3], [1, 2, 4, 5], [1, 2, 3, 6]]) == 2
    assert common_prefix_length([[1, 2], [1, 2, 3]]) == 1  # each view keeps a token of its own
    assert common_prefix_length([[7], [1]]) == 0 and common_prefix_length([]) == 0
    assert pack_segments([3, 2, 4, 1], 5) == [[2, 3], [0, 1]]  # first-fit decreasing
    assert pack_segments([2, 4, 3, 3, 2], 6) == [[1, 0], [2, 3], [4]]  # in order it would take 4 rows
    with pytest.raises(ValueError, match="does not fit"):
        pack_segments([6], 5)


def test_packed_layout_positions(tiny_llama3):
    tokenizer, _, pred_ids, features = _setup(tiny_llama3, 2)
    batch = LLMJepaCollator(pred_token_ids=pred_ids, pad_token_id=tokenizer.pad_token_id, mode="packed")(features)
    for row, feature in enumerate(features):
        n_text = feature["text_prefix_length"]
        pred_slots = batch["block_ids"][row] == BLOCK_PRED
        assert batch["input_ids"][row][pred_slots].tolist() == pred_ids
        assert batch["position_ids"][row][pred_slots].tolist() == [n_text, n_text + 1]
        assert not (batch["block_ids"][row] >= BLOCK_CODE).any()  # example rows hold no Code view
        code, code_row = feature["code_input_ids"], int(batch["code_row"][row])
        assert code_row >= len(features)
        prefix_slots = batch["block_ids"][code_row] == BLOCK_CODE
        prefix = int(prefix_slots.sum())
        assert prefix >= 1 and batch["input_ids"][code_row][prefix_slots].tolist() == code[:prefix]
        segment = batch["block_ids"][code_row] == int(batch["block_ids"][code_row, batch["code_index"][row]])
        assert batch["input_ids"][code_row][segment].tolist() == code[prefix:]
        assert batch["position_ids"][code_row][segment].tolist() == list(range(prefix, len(code)))
        assert batch["code_index"][row] == segment.nonzero().max()


def test_packed_mode_rejects_backends_without_custom_masks(tiny_llama3):
    tokenizer, model, pred_ids, features = _setup(tiny_llama3, 1)
    batch = LLMJepaCollator(pred_token_ids=pred_ids, pad_token_id=tokenizer.pad_token_id, mode="packed")(features)
    model.config._attn_implementation = "flash_attention_2"
    with pytest.raises(ValueError, match="custom 4D mask"):
        llm_jepa_loss(model, batch, JepaObjectiveConfig())
