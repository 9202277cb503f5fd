"""`vljepa eval` end to end for every task on a tiny saved model: each writes its metrics, per-example
predictions and a Markdown report."""

from __future__ import annotations

import json

import pytest
from test_vljepa_decoder_attach import fitted_decoder

pytest_plugins = ["test_vljepa_kit"]  # tiny_model, one_torch_thread
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def run_eval(tmp_path, model_dir, task: str, dataset: str, kwargs: dict, *extra: str) -> dict:
    from vljepa.cli import main

    out = tmp_path / task
    argv = ["eval", "--model", str(model_dir), "--task", task, "--dataset", dataset,
            "--dataset_kwargs", json.dumps(kwargs), "--output_dir", str(out), "--max_samples", "6",
            "--feature_cache_dir", str(tmp_path / "cache"), *extra]
    assert main(argv) == 0
    for name in ("metrics.json", "predictions.jsonl", "report.md"):
        assert (out / name).is_file(), (task, name)
    assert len((out / "predictions.jsonl").read_text().splitlines()) >= 6
    return json.loads((out / "metrics.json").read_text())


def test_vqa_and_captioning_with_an_attached_decoder(tmp_path, tiny_model):
    tiny_model.save_pretrained(tmp_path / "model")
    metrics = run_eval(tmp_path, tmp_path / "model", "vqa", "scenes-vqa", {"num_images": 3, "use_cache": False})
    assert 0.0 <= metrics["vqa_accuracy"] <= 1.0 and metrics["num_questions"] == 6

    decoder = fitted_decoder(tiny_model, tmp_path)
    decoder.save_pretrained(tmp_path / "decoder")
    metrics = run_eval(tmp_path, tmp_path / "model", "captioning", "scenes", {"num_images": 6, "use_cache": False},
                       "--decoder", str(tmp_path / "decoder"))
    assert {"cider", "bleu4"} <= set(metrics)


@pytest.mark.bundled
def test_zeroshot_on_easyvqa_classes(tmp_path, tiny_model):
    tiny_model.save_pretrained(tmp_path / "model")
    metrics = run_eval(tmp_path, tmp_path / "model", "zeroshot", "easyvqa-classes", {"label": "shape"})
    assert metrics["num_classes"] == 3 and 0.0 <= metrics["top1"] <= 1.0
    assert metrics["top5"] == 1.0  # k above the number of classes


@pytest.mark.bundled
def test_vqa_on_easyvqa_reworded_reports_categories(tmp_path, tiny_model, monkeypatch):
    monkeypatch.setenv("JEPA_CACHE_DIR", str(tmp_path / "jepa-cache"))
    tiny_model.save_pretrained(tmp_path / "model")
    metrics = run_eval(tmp_path, tmp_path / "model", "vqa", "easyvqa-reworded", {}, "--max_samples", "12")
    assert metrics["num_questions"] == 12 and metrics["mean_num_candidates"] == 13
    assert set(metrics["vqa_accuracy_by_category"]) <= {
        "synonyms", "word_order", "imperative", "polite", "figure", "negation"
    }  # fmt: skip
    assert len(metrics["vqa_accuracy_by_category"]) >= 3
    assert 0.0 <= metrics["yes_no_answered_yes_no"] <= 1.0 and metrics["num_yes_no_questions"] > 0
    assert "## Accuracy per category" in (tmp_path / "vqa" / "report.md").read_text()


def test_retrieval_on_scenes_reworded(tmp_path, tiny_model):
    tiny_model.save_pretrained(tmp_path / "model")
    metrics = run_eval(tmp_path, tmp_path / "model", "retrieval", "scenes-reworded", {"num_images": 6, "use_cache": False})
    assert {"i2t_r1", "i2t_r5", "t2i_r10"} <= set(metrics)


def test_eval_sets_the_thread_count_and_refuses_a_bad_one(tmp_path, tiny_model, monkeypatch):
    import torch

    from jepa_core.config import ConfigError
    from vljepa.cli import VLJEPAEvalArguments

    calls = []
    monkeypatch.setattr(torch, "set_num_threads", calls.append)
    tiny_model.save_pretrained(tmp_path / "model")
    run_eval(tmp_path, tmp_path / "model", "vqa", "scenes-vqa", {"num_images": 3, "use_cache": False},
             "--torch_num_threads", "1")
    assert calls == [1]
    with pytest.raises((ValueError, ConfigError), match="torch_num_threads must be >= 1"):
        VLJEPAEvalArguments(model="m", task="vqa", dataset="d", output_dir="o", torch_num_threads=0)
