"""Each runner end to end on a tiny deterministic colour model: files written, metrics consistent."""

from __future__ import annotations

import json
import re
from pathlib import Path

import datasets
import numpy as np
import pytest
import torch

from eval.protocol import CaptionGenerator, EmbeddingModel, MissingCapabilityError
from eval.runners import run_captioning, run_retrieval, run_vqa, run_zeroshot
from eval.testing import (
    COLOUR_NAMES,
    ColourModel,
    EmbeddingOnlyColourModel,
    colour_captioning_dataset,
    colour_classification_dataset,
    colour_vqa_dataset,
)
from eval.vqa import vqa_accuracy

COMMON_FILES = {"metrics.json", "predictions.jsonl", "report.md"}


def check_outputs(output_dir: Path, metrics: dict, num_examples: int, figures: set[str]) -> list[dict]:
    files = {path.name for path in output_dir.iterdir()}
    assert COMMON_FILES | figures <= files
    assert json.loads((output_dir / "metrics.json").read_text()) == json.loads(json.dumps(metrics))
    report = (output_dir / "report.md").read_text()
    linked = set(re.findall(r"\]\(([^)]+\.png)\)", report))
    assert linked == figures
    for figure in figures:
        assert (output_dir / figure).read_bytes()[:4] == b"\x89PNG"
    lines = (output_dir / "predictions.jsonl").read_text().splitlines()
    assert len(lines) == num_examples
    return [json.loads(line) for line in lines]


def test_colour_model_implements_the_protocol():
    assert isinstance(ColourModel(), EmbeddingModel)
    assert isinstance(ColourModel(), CaptionGenerator)
    assert not isinstance(EmbeddingOnlyColourModel(), CaptionGenerator)


def test_run_retrieval(tmp_path, capsys):
    metrics = run_retrieval(ColourModel(), colour_captioning_dataset(11), output_dir=tmp_path, batch_size=4)
    assert metrics["num_images"] == 11 and metrics["num_captions"] == 4 * 1 + 4 * 2 + 3 * 3
    for key in ("i2t_r1", "i2t_r5", "i2t_r10", "t2i_r1", "t2i_r5", "t2i_r10"):
        assert 0.0 <= metrics[key] <= 1.0
    # At most two images share a colour (indices i and i + 8), so every caption finds its image within 2.
    assert metrics["t2i_r5"] == 1.0
    assert metrics["positive_similarity_mean"] > metrics["negative_similarity_mean"]
    records = check_outputs(tmp_path, metrics, 11, {"recall_curves.png", "similarity_histogram.png"})
    assert records[3]["image_id"] == 1003 and len(records[3]["captions"]) == 1
    i2t_ranks = np.array([record["i2t_rank"] for record in records])
    assert metrics["i2t_r1"] == pytest.approx(np.mean(i2t_ranks < 1))
    assert "i2t_r1 (%)" in capsys.readouterr().out


@pytest.mark.parametrize("with_candidates", [True, False])
def test_run_vqa(tmp_path, with_candidates):
    dataset = colour_vqa_dataset(9, with_candidates=with_candidates)
    metrics = run_vqa(ColourModel(), dataset, output_dir=tmp_path, batch_size=4)
    figures = {"accuracy_by_question_type.png", "confusion_matrix.png", "similarity_histogram.png"}
    records = check_outputs(tmp_path, metrics, 9, figures)
    expected = [vqa_accuracy(record["prediction"], row["answers"]) for record, row in zip(records, dataset)]
    assert metrics["vqa_accuracy"] == pytest.approx(np.mean(expected))
    assert set(metrics["vqa_accuracy_by_type"]) == {"what color", "what is the color"}
    odd = [acc for acc, row in zip(expected, dataset) if row["question_type"] == "what color"]
    assert metrics["vqa_accuracy_by_type"]["what color"] == pytest.approx(np.mean(odd))
    if with_candidates:
        assert metrics["num_questions_scored_on_dataset_answers"] == 0
        assert [r["num_candidates"] for r in records] == [len(row["candidates"]) for row in dataset]
    else:
        # Every colour appears among the answers, so the model always finds the image's colour.
        assert metrics["num_questions_scored_on_dataset_answers"] == 9
        assert [r["prediction"] for r in records] == [COLOUR_NAMES[i % 8] for i in range(9)]
        assert metrics["mean_num_candidates"] == 8


def test_run_vqa_on_a_hugging_face_dataset(tmp_path):
    rows = colour_vqa_dataset(5)
    dataset = datasets.Dataset.from_list(rows).cast_column("image", datasets.Image())
    from_hf = run_vqa(ColourModel(), dataset, output_dir=tmp_path / "hf", batch_size=2)
    from_list = run_vqa(ColourModel(), rows, output_dir=tmp_path / "list", batch_size=3)
    assert from_hf == from_list


def test_run_zeroshot(tmp_path):
    metrics = run_zeroshot(
        ColourModel(),
        colour_classification_dataset(10),
        output_dir=tmp_path,
        class_names=COLOUR_NAMES,
        batch_size=3,
    )
    assert metrics["top1"] == 1.0 and metrics["top5"] == 1.0
    assert metrics["num_classes"] == 8 and metrics["num_templates"] >= 2
    records = check_outputs(tmp_path, metrics, 10, {"confusion_matrix.png", "similarity_histogram.png"})
    assert [r["prediction_name"] for r in records] == [COLOUR_NAMES[i % 8] for i in range(10)]


def test_run_zeroshot_takes_class_names_from_a_class_label(tmp_path):
    rows = colour_classification_dataset(4)
    features = datasets.Features(
        {"image": datasets.Image(), "label": datasets.ClassLabel(names=list(COLOUR_NAMES))}
    )
    dataset = datasets.Dataset.from_list(rows, features=features)
    assert run_zeroshot(ColourModel(), dataset, output_dir=tmp_path)["top1"] == 1.0
    with pytest.raises(ValueError, match="pass class_names"):
        run_zeroshot(ColourModel(), rows, output_dir=tmp_path)


def test_run_captioning(tmp_path):
    metrics = run_captioning(ColourModel(), colour_captioning_dataset(10), output_dir=tmp_path, batch_size=4)
    assert metrics["cider"] > 1.0 and 0.0 < metrics["bleu4"] <= 1.0
    records = check_outputs(tmp_path, metrics, 10, {"cider_histogram.png", "caption_lengths.png"})
    assert records[0]["caption"] == "a square that is red" and "cider" in records[0]


def test_captioning_without_a_decoder_is_a_clear_error(tmp_path):
    with pytest.raises(MissingCapabilityError, match="no generate_captions"):
        run_captioning(EmbeddingOnlyColourModel(), colour_captioning_dataset(3), output_dir=tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_captioning_rejects_duplicate_image_ids(tmp_path):
    rows = colour_captioning_dataset(3)
    rows[2]["image_id"] = rows[0]["image_id"]
    with pytest.raises(ValueError, match="appears in rows 0 and 2"):
        run_captioning(ColourModel(), rows, output_dir=tmp_path)


def test_bad_rows_name_the_row_and_field(tmp_path):
    rows = colour_vqa_dataset(4)
    del rows[2]["question_type"]
    with pytest.raises(KeyError, match="row 2 has no field\\(s\\) \\['question_type'\\]"):
        run_vqa(ColourModel(), rows, output_dir=tmp_path)
    rows = colour_captioning_dataset(3)
    rows[1]["image"] = "cat.png"  # a path is an image reference (decode_image); this one does not exist
    with pytest.raises(ValueError, match=r"retrieval: dataset row 1 \(cat.png\): not_found \(no file at cat.png\)"):
        run_retrieval(ColourModel(), rows, output_dir=tmp_path)
    rows[1]["image"] = 7
    with pytest.raises(ValueError, match=r"retrieval: dataset row 1: missing \(expected a path, bytes or PIL image"):
        run_retrieval(ColourModel(), rows, output_dir=tmp_path)
    rows = colour_captioning_dataset(3)
    rows[0]["captions"] = []
    with pytest.raises(ValueError, match="row 0 field 'captions' is empty"):
        run_retrieval(ColourModel(), rows, output_dir=tmp_path)


def test_a_model_returning_the_wrong_shape_is_reported(tmp_path):
    class OneRowTooFew(ColourModel):
        def embed_images(self, images, *, batch_size=32):
            return super().embed_images(images)[:-1]

    with pytest.raises(ValueError, match=r"OneRowTooFew.embed_images returned shape \(1, 16\); expected \[2"):
        run_retrieval(OneRowTooFew(), colour_captioning_dataset(2), output_dir=tmp_path)


def test_a_model_without_the_protocol_is_rejected(tmp_path):
    with pytest.raises(MissingCapabilityError, match="answer_scores"):
        run_vqa(object(), colour_vqa_dataset(2), output_dir=tmp_path)


def test_runners_do_not_track_gradients(tmp_path):
    class RecordsGradMode(ColourModel):
        def __init__(self):
            super().__init__()
            self.grad_enabled: list[bool] = []

        def embed_images(self, images, *, batch_size=32):
            self.grad_enabled.append(torch.is_grad_enabled())
            return super().embed_images(images)

    model = RecordsGradMode()
    run_zeroshot(model, colour_classification_dataset(3), output_dir=tmp_path, class_names=COLOUR_NAMES)
    assert model.grad_enabled == [False]
