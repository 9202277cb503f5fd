"""LLM-JEPA's lambda = 0 baseline is trl's ``SFTTrainer``: same first-step loss and same update, same data and weights.

The baseline arm (``llm-jepa train ... --jepa_loss_weight 0``, what ``llm-jepa compare`` trains) is run end to end
through :func:`llm_jepa.run.train`; trl gets the same chat ``messages`` with ``assistant_only_loss=True``. The
settings that make the two the same training step:

* labels: ours are the assistant tokens (content and end-of-turn tokens up to the end of the conversation);
  trl's ``assistant_only_loss`` takes the tokens inside the chat template's ``{% generation %}`` block. The tiny
  models' templates get those markers here, around exactly the span trl's own training templates mark
  (``trl/chat_templates/llama3_training.jinja``: content + ``<|eot_id|>``; the ChatML ones, e.g.
  ``qwen2_5_training.jinja``: content + ``<|im_end|>\\n``). The marked templates render the same text.
* SFTConfig defaults that differ from TrainingArguments are reset: ``bf16=False`` (trl turns bf16 on),
  ``gradient_checkpointing=False``; trl adds no EOS to conversational data, so none is added.
* ``num_pred_tokens``: with k >= 1 the [PRED] tokens are rows of the vocabulary even at lambda = 0 (extra output
  classes of the softmax), so the baseline equals SFTTrainer on the *resized* model that
  :func:`llm_jepa.loading.load_model_for_training` returns, not on the original checkpoint (k = 0 is that).

One documented difference: with gradient accumulation, our loss is the mean of the micro-batches' token means
(each micro-batch weighs the same), trl's (transformers' ``num_items_in_batch``) the token mean of the whole
accumulated batch. Both are asserted against a reference computation below; with one micro-batch per step they
coincide.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from datasets import Dataset
from transformers import AutoModelForCausalLM, AutoTokenizer

from jepa_core.testing import CHAT_TEMPLATES
from llm_jepa.arguments import DataArguments, LLMJepaModelArguments, LLMJepaTrainingArguments
from llm_jepa.loading import load_model_for_training
from llm_jepa.run import train

trl = pytest.importorskip("trl")

MARKED_TEMPLATES = {
    "llama3": (
        "{{ bos_token }}{% for message in messages %}"
        "<|start_header_id|>{{ message['role'] }}<|end_header_id|>\n\n"
        "{% if message['role'] == 'assistant' %}{% generation %}{{ message['content'] | trim }}<|eot_id|>"
        "{% endgeneration %}{% else %}{{ message['content'] | trim }}<|eot_id|>{% endif %}"
        "{% endfor %}{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
    ),
    "chatml": (
        "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
        "{% if message['role'] == 'assistant' %}{% generation %}{{ message['content'] }}<|im_end|>\n"
        "{% endgeneration %}{% else %}{{ message['content'] }}<|im_end|>\n{% endif %}"
        "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    ),
}

# Answers of very different lengths: the first two micro-batches (sequential order, 2 rows each) hold far fewer
# answer tokens than the last two, so a per-micro-batch mean and a per-token mean differ clearly.
ANSWERS = ["dog", "(.*cat.*){2}", "select name from users where age > 30 order by name", "the shape is green. two"]
LR = 0.1


def _conversations() -> list[list[dict[str, str]]]:
    return [
        [
            {"role": "system", "content": "write a regular expression"},
            {"role": "user", "content": f"lines containing the word {word}"},
            {"role": "assistant", "content": answer},
        ]
        for word, answer in zip(["dog", "cat", "red", "blue"], ANSWERS)
    ]


@pytest.fixture
def marked_model(tiny_llm: Path, tmp_path: Path) -> Path:
    """The tiny model with a chat template carrying ``{% generation %}`` markers (same rendered text)."""
    family = "llama3" if "llama3" in tiny_llm.name else "chatml"
    tokenizer = AutoTokenizer.from_pretrained(tiny_llm)
    assert tokenizer.chat_template == CHAT_TEMPLATES[family]
    for messages in _conversations():
        plain = tokenizer.apply_chat_template(messages, tokenize=False)
        assert tokenizer.apply_chat_template(messages, tokenize=False, chat_template=MARKED_TEMPLATES[family]) == plain
    tokenizer.chat_template = MARKED_TEMPLATES[family]
    path = tmp_path / "marked"
    AutoModelForCausalLM.from_pretrained(tiny_llm).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def _common(tmp_path: Path, name: str, accumulation: int) -> dict:
    return {
        "output_dir": str(tmp_path / name), "max_steps": 1, "per_device_train_batch_size": 4 // accumulation,
        "gradient_accumulation_steps": accumulation, "learning_rate": LR, "optim": "sgd", "logging_steps": 1,
        "save_strategy": "no", "report_to": "none", "use_cpu": True, "seed": 0, "disable_tqdm": True,
        "train_sampling_strategy": "sequential",
    }


def _llm_jepa_baseline(model_dir: Path, tmp_path: Path, *, mode: str, k: int, accumulation: int = 1):
    """``llm-jepa train`` with jepa_loss_weight 0: (first logged loss, trained model)."""
    output_dir = train(
        LLMJepaModelArguments(model_name_or_path=str(model_dir), peft="none"),
        DataArguments(max_length=256),
        LLMJepaTrainingArguments(
            **_common(tmp_path, "llm_jepa", accumulation), jepa_loss_weight=0.0, num_pred_tokens=k, jepa_mode=mode
        ),
        train_dataset=Dataset.from_list([{"messages": m} for m in _conversations()]),
    )
    history = json.loads((output_dir / "trainer_state.json").read_text())["log_history"]
    return history[0]["loss"], AutoModelForCausalLM.from_pretrained(output_dir)


def _sft(model, tokenizer, tmp_path: Path, *, accumulation: int = 1):
    """trl's SFTTrainer, one step: (first logged loss, trained model)."""
    config = trl.SFTConfig(
        **_common(tmp_path, "trl", accumulation), assistant_only_loss=True, bf16=False, activation_checkpointing=False
    )
    trainer = trl.SFTTrainer(
        model=model, args=config, processing_class=tokenizer,
        train_dataset=Dataset.from_list([{"messages": m} for m in _conversations()]),
    )
    trainer.train()
    first = next(entry for entry in trainer.state.log_history if "loss" in entry)
    return first["loss"], trainer.model


def _initial(model_dir: Path, k: int):
    """The starting weights both trainers see: the checkpoint, with k [PRED] rows added as our loader does."""
    if k == 0:
        return AutoModelForCausalLM.from_pretrained(model_dir), AutoTokenizer.from_pretrained(model_dir)
    model, tokenizer, _, _ = load_model_for_training(
        LLMJepaModelArguments(model_name_or_path=str(model_dir), peft="none"), num_pred_tokens=k
    )
    return model, tokenizer


def _assert_same_update(before, ours, theirs) -> None:
    start = dict(before.named_parameters())
    theirs_params = dict(theirs.named_parameters())
    moved = 0
    for name, param in ours.named_parameters():
        ours_step = param.detach() - start[name].detach()
        trl_step = theirs_params[name].detach() - start[name].detach()
        torch.testing.assert_close(ours_step, trl_step, rtol=1e-4, atol=1e-7, msg=lambda m, n=name: f"{n}: {m}")
        moved += int(ours_step.abs().max() > 1e-6)
    assert moved == len(start), "every parameter takes a step (otherwise equal updates prove nothing)"


@pytest.mark.parametrize(("mode", "k"), [("packed", 0), ("separate", 0), ("packed", 1)])
def test_lambda_zero_baseline_takes_the_sft_trainer_step(marked_model, tmp_path, mode, k):
    ours_loss, ours_model = _llm_jepa_baseline(marked_model, tmp_path, mode=mode, k=k)
    before, tokenizer = _initial(marked_model, k)
    model, _ = _initial(marked_model, k)
    trl_loss, trl_model = _sft(model, tokenizer, tmp_path)
    assert ours_loss == pytest.approx(trl_loss, rel=1e-5)
    assert ours_loss == pytest.approx(_reference_losses(before, tokenizer)["pooled"], rel=1e-5)
    _assert_same_update(before, ours_model, trl_model)


def _reference_losses(model, tokenizer) -> dict[str, float]:
    """Next-token CE on trl's assistant mask, one example at a time: the token mean of all four examples, and the
    mean of the two sequential micro-batches' token means."""
    sums, counts = [], []
    with torch.no_grad():
        for messages in _conversations():
            encoded = tokenizer.apply_chat_template(
                messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True
            )
            ids = torch.tensor([encoded["input_ids"]])
            mask = torch.tensor(encoded["assistant_masks"][1:], dtype=torch.bool)
            logits = model(input_ids=ids).logits[0, :-1].float()
            losses = torch.nn.functional.cross_entropy(logits, ids[0, 1:], reduction="none")
            sums.append(float(losses[mask].sum()))
            counts.append(int(mask.sum()))
    halves = [(sums[0] + sums[1]) / (counts[0] + counts[1]), (sums[2] + sums[3]) / (counts[2] + counts[3])]
    return {"pooled": sum(sums) / sum(counts), "per_micro_batch": sum(halves) / 2}


def test_gradient_accumulation_weighs_micro_batches_where_trl_weighs_tokens(tiny_llama3, tmp_path):
    family_dir = tmp_path / "model"
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama3)
    tokenizer.chat_template = MARKED_TEMPLATES["llama3"]
    AutoModelForCausalLM.from_pretrained(tiny_llama3).save_pretrained(family_dir)
    tokenizer.save_pretrained(family_dir)
    reference = _reference_losses(AutoModelForCausalLM.from_pretrained(family_dir), tokenizer)
    assert abs(reference["pooled"] - reference["per_micro_batch"]) > 1e-3  # the data makes the two differ

    ours_loss, _ = _llm_jepa_baseline(family_dir, tmp_path, mode="packed", k=0, accumulation=2)
    trl_loss, _ = _sft(AutoModelForCausalLM.from_pretrained(family_dir), tokenizer, tmp_path, accumulation=2)
    assert ours_loss == pytest.approx(reference["per_micro_batch"], rel=1e-5)
    assert trl_loss == pytest.approx(reference["pooled"], rel=1e-5)
