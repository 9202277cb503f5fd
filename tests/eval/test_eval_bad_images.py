"""Bad image files through the evaluation runners: 'error' names the row and file, 'skip' scores the other
rows and lists the skipped ones (row, file, reason) in metrics.json. The runners still only call the model's
public API (ColourModel), and decode through vljepa.data.images.decode_image."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pytest
from bad_images import BAD, UNUSUAL, write_bad_images

from eval.runners import run_retrieval, run_vqa
from eval.testing import ColourModel, colour_captioning_dataset, colour_vqa_dataset
from vljepa.data.images import BadInputError
from vljepa.data.schema import CAPTION_FEATURES

NAMES = sorted([*BAD, *UNUSUAL])


def vqa_rows_with_files(folder: Path) -> list[dict]:
    files = write_bad_images(folder)
    rows = colour_vqa_dataset(4 + len(NAMES))
    for row, name in zip(rows[4:], NAMES):
        row["image"] = str(files[name])
    return rows


def test_vqa_skip_scores_the_good_rows_and_lists_the_bad_ones(tmp_path):
    rows = vqa_rows_with_files(tmp_path / "images")
    metrics = run_vqa(ColourModel(), rows, output_dir=tmp_path / "out", on_bad_input="skip")
    assert metrics["num_questions"] == 4 + len(UNUSUAL) and metrics["skipped_bad_inputs"] == len(BAD)
    listed = {entry["index"]: entry for entry in metrics["bad_inputs"]}
    for name, reason in BAD.items():
        index = 4 + NAMES.index(name)
        assert listed[index]["reason"] == reason
        assert listed[index]["where"] == f"VQA: dataset row {index} ({tmp_path / 'images' / name})"
    on_disk = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert on_disk["bad_inputs"] == metrics["bad_inputs"]
    predictions = [json.loads(line) for line in (tmp_path / "out" / "predictions.jsonl").read_text().splitlines()]
    assert sorted(record["index"] for record in predictions) == sorted(set(range(len(rows))) - set(listed))


def test_vqa_error_names_the_row_and_file(tmp_path):
    rows = vqa_rows_with_files(tmp_path / "images")
    index = 4 + NAMES.index("bomb.png")
    with pytest.raises(BadInputError, match=rf"VQA: dataset row {index} \(.*bomb.png\): too_large"):
        run_vqa(ColourModel(), rows, output_dir=tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_retrieval_over_an_arrow_dataset_decodes_through_the_policy(tmp_path):
    """A datasets.Dataset decodes images itself on row access; the runner reads it undecoded instead, so a
    zero-byte or truncated file follows the policy rather than failing inside datasets."""
    files = write_bad_images(tmp_path / "images")
    rows = colour_captioning_dataset(3)
    for row in rows:
        row["image_id"] = str(row["image_id"])
    rows += [{"image": str(files[name]), "captions": [f"file {name}"], "image_id": name} for name in NAMES]
    dataset = datasets.Dataset.from_list(rows, features=CAPTION_FEATURES)
    metrics = run_retrieval(ColourModel(), dataset, output_dir=tmp_path / "out", on_bad_input="skip")
    assert metrics["num_images"] == 3 + len(UNUSUAL) and metrics["skipped_bad_inputs"] == len(BAD)
    assert {entry["reason"] for entry in metrics["bad_inputs"]} == set(BAD.values())
    with pytest.raises(BadInputError, match=r"retrieval: dataset row 3 \(.*bomb.png\): too_large"):
        run_retrieval(ColourModel(), dataset, output_dir=tmp_path / "refused")


@pytest.mark.parametrize("task", ["zeroshot", "captioning"])
def test_zeroshot_and_captioning_skip_and_error(tmp_path, task):
    from eval.runners import run_captioning, run_zeroshot
    from eval.testing import COLOUR_NAMES, colour_classification_dataset

    files = write_bad_images(tmp_path / "images")
    if task == "zeroshot":
        rows, run = colour_classification_dataset(4 + len(NAMES)), run_zeroshot
        kwargs = {"class_names": COLOUR_NAMES}
    else:
        rows, run, kwargs = colour_captioning_dataset(4 + len(NAMES)), run_captioning, {}
    for row, name in zip(rows[4:], NAMES):
        row["image"] = str(files[name])
    metrics = run(ColourModel(), rows, output_dir=tmp_path / "out", on_bad_input="skip", **kwargs)
    counted = metrics["num_examples"] if task == "zeroshot" else metrics["num_images"]
    assert counted == 4 + len(UNUSUAL) and metrics["skipped_bad_inputs"] == len(BAD)
    assert sorted(Path(e["where"].split(" (")[1][:-1]).name for e in metrics["bad_inputs"]) == sorted(BAD)
    with pytest.raises(BadInputError, match=r"dataset row 4 \(.*bomb.png\): too_large"):
        run(ColourModel(), rows, output_dir=tmp_path / "refused", **kwargs)
