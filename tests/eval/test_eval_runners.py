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
    colour_image,
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


def categorised_vqa_dataset() -> list[dict]:
    """Colour questions plus yes/no questions, each with a ``category``; the colour model never reads the
    question, so it answers yes/no only where the candidates hold no colour."""
    rows = colour_vqa_dataset(4)
    for row in rows:
        row["category"] = "plain"
    for index in range(4, 10):
        rows.append(
            {
                "image": colour_image(index),
                "question": "is the square red?",
                "answers": ["yes" if index % 2 else "no"],
                "question_type": "yes/no",
                # rows 4-6: only yes/no to choose from; rows 7-9: the image's colour is a candidate
                "candidates": ["yes", "no"] + ([COLOUR_NAMES[index % 8]] if index >= 7 else []),
                "question_id": f"q{index}",
                "category": "negation" if index % 3 else "plain",
            }
        )
    return rows


def test_run_vqa_reports_accuracy_and_yes_no_answers_by_category(tmp_path):
    rows = categorised_vqa_dataset()
    metrics = run_vqa(ColourModel(), rows, output_dir=tmp_path, batch_size=4)
    figures = {"accuracy_by_question_type.png", "confusion_matrix.png", "similarity_histogram.png"}
    records = check_outputs(tmp_path, metrics, len(rows), figures)
    assert [record["category"] for record in records] == [row["category"] for row in rows]
    for name in ("plain", "negation"):
        expected = np.mean([r["accuracy"] for r, row in zip(records, rows) if row["category"] == name])
        assert metrics["vqa_accuracy_by_category"][name] == pytest.approx(expected)
    yes_no = [record["prediction"] in ("yes", "no") for record in records[4:]]
    assert yes_no == [True, True, True, False, False, False]
    assert metrics["yes_no_answered_yes_no"] == pytest.approx(0.5)
    assert metrics["num_yes_no_questions"] == 6
    # negation rows: 4, 5, 7, 8 (two answered yes/no); plain yes/no rows: 6, 9 (one)
    assert metrics["yes_no_answered_yes_no_by_category"] == {"negation": 0.5, "plain": 0.5}
    report = (tmp_path / "report.md").read_text()
    assert "## Accuracy per category" in report and "yes/no answered yes/no (%)" in report
    assert "| negation | 4 |" in report


def test_run_vqa_without_a_category_column_keeps_its_outputs(tmp_path):
    metrics = run_vqa(ColourModel(), colour_vqa_dataset(5), output_dir=tmp_path, batch_size=4)
    assert set(metrics) == {
        "vqa_accuracy", "vqa_accuracy_by_type", "num_questions", "num_question_types", "mean_num_candidates",
        "num_questions_scored_on_dataset_answers", "skipped_bad_inputs", "bad_inputs",
    }  # fmt: skip
    records = [json.loads(line) for line in (tmp_path / "predictions.jsonl").read_text().splitlines()]
    assert all("category" not in record for record in records)
    assert "per category" not in (tmp_path / "report.md").read_text()


def test_run_vqa_category_on_a_hugging_face_dataset(tmp_path):
    rows = categorised_vqa_dataset()
    for row in rows:
        row["answers"] = row["answers"][:1]
    dataset = datasets.Dataset.from_list(rows).cast_column("image", datasets.Image())
    assert run_vqa(ColourModel(), dataset, output_dir=tmp_path / "hf") == run_vqa(
        ColourModel(), rows, output_dir=tmp_path / "list"
    )


def test_vqa_empty_question_is_an_error_naming_the_row(tmp_path):
    from eval.runners.vqa import run_vqa
    from eval.testing import ColourModel, colour_vqa_dataset

    dataset = colour_vqa_dataset(6)
    dataset[4]["question"] = "   "
    with pytest.raises(ValueError, match=r"row 4 .*empty question"):
        run_vqa(ColourModel(), dataset, output_dir=tmp_path)


def test_vqa_reports_questions_a_model_truncated(tmp_path):
    from eval.runners.vqa import run_vqa
    from eval.testing import ColourModel, colour_vqa_dataset

    class TruncatingModel(ColourModel):
        """Counts questions over 20 characters as truncated, like VL-JEPA's query limit."""

        num_truncated_queries = 3  # earlier calls: only the increase during this evaluation counts

        def answer_scores(self, images, questions, candidates, *, batch_size=32):
            self.num_truncated_queries += sum(len(q) > 20 for q in questions)
            return super().answer_scores(images, questions, candidates, batch_size=batch_size)

    dataset = colour_vqa_dataset(5)
    for row in dataset[:2]:
        row["question"] = "what colour is the one shape in this small image?"
    metrics = run_vqa(TruncatingModel(), dataset, output_dir=tmp_path)
    expected = sum(len(row["question"]) > 20 for row in dataset)
    assert metrics["num_truncated_questions"] == expected >= 2
    assert "num_truncated_questions" not in run_vqa(ColourModel(), dataset, output_dir=tmp_path / "plain")
