"""LLM-JEPA scale-out: the launcher's precision is used, unsupported backends and QLoRA under FSDP / DeepSpeed
are refused before the model loads, and the [PRED] rows are written under ZeRO-3's GatheredParameters.
DeepSpeed is not installed here and FSDP does not run on a CPU with accelerate 1.x: the ZeRO-3 path is checked
with a stand-in `deepspeed.zero.GatheredParameters`."""

from __future__ import annotations

import logging
import sys
import types

import pytest
import torch
from datasets import Dataset

from jepa_core.backends import UnsupportedBackendError
from llm_jepa import loading
from llm_jepa.arguments import DataArguments, LLMJepaModelArguments, LLMJepaTrainingArguments
from llm_jepa.run import train


def _rows(n=8):
    return Dataset.from_list([{"messages": [
        {"role": "user", "content": f"lines with the word dog {i % 3 + 1} times"},
        {"role": "assistant", "content": f"(.*dog.*){{{i % 3 + 1}}}"},
    ]} for i in range(n)])  # fmt: skip


def _train_args(tmp_path, **overrides):
    values = {"output_dir": str(tmp_path / "run"), "max_steps": 1, "per_device_train_batch_size": 4,
              "logging_steps": 1, "save_strategy": "no", "report_to": "none", "num_pred_tokens": 1,
              "disable_tqdm": True}
    return LLMJepaTrainingArguments(**{**values, **overrides})


@pytest.fixture
def fresh_accelerate_state():
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)
    yield
    AcceleratorState._reset_state(reset_partial_state=True)


@pytest.fixture
def no_model_loading(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(loading, "load_model_for_training", refuse)


@pytest.mark.usefixtures("no_model_loading")
@pytest.mark.parametrize(("env", "peft", "match"), [
    ({"ACCELERATE_USE_MEGATRON_LM": "true"}, "lora", "Megatron-LM.*supported: single process"),
    ({"ACCELERATE_USE_FSDP": "true", "FSDP_VERSION": "2"}, "qlora", "peft: qlora cannot be combined with FSDP"),
    ({"ACCELERATE_USE_DEEPSPEED": "true", "ACCELERATE_DEEPSPEED_ZERO_STAGE": "3"}, "qlora",
     "qlora cannot be combined with DeepSpeed ZeRO-3.*Use peft: lora"),
    ({"ACCELERATE_USE_DEEPSPEED": "true", "ACCELERATE_DEEPSPEED_ZERO_STAGE": "2"}, "lora",
     "on_nonfinite_loss: skip cannot work under DeepSpeed"),
])  # fmt: skip
def test_refused_before_the_model_loads(tiny_llama3, tmp_path, monkeypatch, env, peft, match):
    import jepa_core.distributed

    train_args = _train_args(tmp_path, use_cpu=False, on_nonfinite_loss="skip")  # before the launch variables
    monkeypatch.setattr(jepa_core.distributed, "accelerator_available", lambda: True)  # as on a GPU machine
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    model_args = LLMJepaModelArguments(model_name_or_path=str(tiny_llama3), peft=peft)
    with pytest.raises(UnsupportedBackendError, match=match):
        train(model_args, DataArguments(dataset="regex"), train_args, train_dataset=_rows())


@pytest.mark.usefixtures("no_model_loading")
def test_fsdp_on_the_cpu_is_refused(tiny_llama3, tmp_path, monkeypatch):
    train_args = _train_args(tmp_path, use_cpu=True)
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    monkeypatch.setenv("FSDP_VERSION", "2")
    model_args = LLMJepaModelArguments(model_name_or_path=str(tiny_llama3), peft="lora")
    with pytest.raises(UnsupportedBackendError, match="silently fall back to unsharded DDP"):
        train(model_args, DataArguments(dataset="regex"), train_args, train_dataset=_rows())


@pytest.mark.slow
@pytest.mark.usefixtures("fresh_accelerate_state")
@pytest.mark.parametrize(("recipe_bf16", "expected"), [(False, torch.bfloat16), (True, torch.bfloat16)])
def test_training_follows_the_launchers_bf16(tiny_llama3, tmp_path, monkeypatch, caplog, recipe_bf16, expected):
    """`accelerate launch --mixed_precision bf16` sets ACCELERATE_MIXED_PRECISION=bf16; with bf16 unset in the
    recipe the HF Trainer autocasts to bf16 (CPU autocast supports it); the choice and its source are logged."""
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "bf16")
    train_args = _train_args(tmp_path, use_cpu=True, bf16=recipe_bf16)
    seen: list[torch.dtype] = []
    load = loading.load_model_for_training

    def load_and_watch(*args, **kwargs):
        model, *rest = load(*args, **kwargs)
        model.get_decoder().layers[0].mlp.register_forward_hook(lambda m, i, out: seen.append(out.dtype))
        return (model, *rest)

    monkeypatch.setattr(loading, "load_model_for_training", load_and_watch)
    model_args = LLMJepaModelArguments(model_name_or_path=str(tiny_llama3), peft="none")
    with caplog.at_level(logging.INFO, logger="llm_jepa.run"):
        train(model_args, DataArguments(dataset="regex"), train_args, train_dataset=_rows())
    assert seen and set(seen) == {expected}
    source = "the recipe" if recipe_bf16 else "the accelerate launch"
    assert f"Mixed precision bf16 (from {source}" in caplog.text


def test_pred_rows_are_written_inside_zero3_gathered_parameters(tiny_llama3, monkeypatch):
    """Under ZeRO-3 the new [PRED] rows are filled while the embeddings are gathered, with rank 0 as the writer."""
    import transformers.integrations.deepspeed as hf_deepspeed
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_llama3)
    old_rows = model.get_input_embeddings().num_embeddings
    model.resize_token_embeddings(old_rows + 2, mean_resizing=False)
    calls = []

    class GatheredParameters:
        def __init__(self, params, modifier_rank=None):
            calls.append({"params": list(params), "modifier_rank": modifier_rank})

        def __enter__(self):
            calls[-1]["filled_on_enter"] = self._filled()

        def __exit__(self, *exc):
            calls[-1]["filled_on_exit"] = self._filled()

        def _filled(self):
            weight = calls[-1]["params"][0]
            return torch.allclose(weight[old_rows:], weight[:old_rows].mean(dim=0).expand(2, -1))

    fake = types.ModuleType("deepspeed")
    fake.zero = types.SimpleNamespace(GatheredParameters=GatheredParameters)
    monkeypatch.setitem(sys.modules, "deepspeed", fake)
    monkeypatch.setattr(hf_deepspeed, "is_deepspeed_zero3_enabled", lambda: True)
    loading.fill_new_rows(model, old_rows)
    assert len(calls) == 1 and calls[0]["modifier_rank"] == 0
    embeddings = {id(model.get_input_embeddings().weight), id(model.get_output_embeddings().weight)}
    assert {id(p) for p in calls[0]["params"]} == embeddings
    assert not calls[0]["filled_on_enter"] and calls[0]["filled_on_exit"]
