"""A refused `llm-jepa train` into a finished run's folder writes nothing (config.yaml, run_info.json and the
model stay byte-for-byte as they were)."""

from __future__ import annotations

from pathlib import Path

from datasets import Dataset

from llm_jepa.run import main


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_refused_train_into_a_finished_run_writes_nothing(tiny_llama3, tmp_path, capsys):
    data = tmp_path / "train.jsonl"
    rows = Dataset.from_list([{"id": f"e{i}", "messages": [{"role": "user", "content": f"word {i}"},
                                                           {"role": "assistant", "content": "(.*a.*)"}]}
                              for i in range(4)])
    rows.to_json(str(data))
    out = tmp_path / "run"
    argv = ["--model_name_or_path", str(tiny_llama3), "--peft", "lora", "--lora_r", "2", "--lora_alpha", "4",
            "--dataset", f"jsonl:{data}", "--max_length", "64", "--output_dir", str(out), "--max_steps", "1",
            "--per_device_train_batch_size", "2", "--report_to", "none", "--save_strategy", "no",
            "--num_pred_tokens", "1", "--disable_tqdm", "true"]
    assert main(argv) == 0
    before = snapshot(out)
    assert {"config.yaml", "run_info.json", "README.md", "adapter_model.safetensors"} <= set(before)
    capsys.readouterr()
    assert main([*argv, "--learning_rate", "0.5", "--seed", "7"]) == 2
    assert "already holds a trained model" in capsys.readouterr().err
    assert snapshot(out) == before
