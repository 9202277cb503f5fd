"""`llm-jepa train` that would train zero steps fails with a clear message and writes no model or model card."""

from __future__ import annotations

import json

import pytest
from datasets import Dataset

from jepa_core.config import ConfigError
from llm_jepa.arguments import DataArguments, LLMJepaModelArguments, LLMJepaTrainingArguments
from llm_jepa.run import main, train


@pytest.mark.parametrize("flags", [["--max_steps", "0"], ["--num_train_epochs", "0"]], ids=["max_steps", "epochs"])
def test_zero_steps_are_refused_at_parse_time(tiny_llama3, tmp_path, capsys, flags):
    out = tmp_path / "run"
    argv = ["--model_name_or_path", str(tiny_llama3), "--dataset", "regex-synth", "--output_dir", str(out), *flags]
    assert main(argv) == 2
    assert "would train zero steps" in capsys.readouterr().err
    assert not out.exists()


def _rows(n):
    return Dataset.from_list([{"id": f"e{i}", "messages": [{"role": "user", "content": f"word {i}"},
                                                           {"role": "assistant", "content": "(.*a.*)"}]}
                              for i in range(n)])


def _train(tiny_llama3, tmp_path, rows, **overrides):
    values = {"output_dir": str(tmp_path / "run"), "num_train_epochs": 1, "per_device_train_batch_size": 4,
              "report_to": "none", "save_strategy": "no", "disable_tqdm": True, "num_pred_tokens": 1, **overrides}
    model_args = LLMJepaModelArguments(model_name_or_path=str(tiny_llama3), peft="lora", lora_r=2, lora_alpha=4)
    return train(model_args, DataArguments(dataset="regex-synth", max_length=64), LLMJepaTrainingArguments(**values),
                 train_dataset=rows)


def test_empty_training_data_is_refused(tiny_llama3, tmp_path):
    with pytest.raises(ConfigError, match="no training examples"):
        _train(tiny_llama3, tmp_path, _rows(0))
    assert not (tmp_path / "run" / "README.md").exists()


def test_a_run_that_took_no_optimizer_step_writes_no_card(tiny_llama3, tmp_path):
    """Fewer examples than one batch with dataloader_drop_last: the Trainer runs zero steps."""
    with pytest.raises(ConfigError, match="zero optimizer steps") as info:
        _train(tiny_llama3, tmp_path, _rows(2), dataloader_drop_last=True, max_steps=2)
    assert "no model or model card" in str(info.value)
    out = tmp_path / "run"
    assert not (out / "README.md").exists() and not (out / "adapter_model.safetensors").exists()
    assert json.loads((out / "run_info.json").read_text())["argv"]  # the run record stays, for diagnosis
