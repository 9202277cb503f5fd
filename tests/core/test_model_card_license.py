"""Model cards: license from the config or derived from the base models (and stated), datasets in the front
matter as Hub ids only, evaluation results in the Hub's model-index format."""

from __future__ import annotations

import json

import yaml
from huggingface_hub import ModelCard

from jepa_core.model_card import BaseModelRef as Ref
from jepa_core.model_card import card_from_folder, derived_license, render_model_card

BUNDLED = ["timm/tf_efficientnet_lite0.in1k", "sentence-transformers/all-MiniLM-L6-v2"]


def _front(text: str) -> dict:
    return yaml.safe_load(text.split("---")[1])


def _local_model(tmp_path, name: str, license: str | None):
    folder = tmp_path / name
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    if license:
        (folder / "README.md").write_text(f"---\nlicense: {license}\n---\n# {name}\n")
    return str(folder)


def test_license_defaults_to_the_base_models_and_states_each(tmp_path):
    assert derived_license([Ref(id=i) for i in BUNDLED]) == "apache-2.0"  # bundled registry: upstream cards
    mit_a, mit_b = _local_model(tmp_path, "a", "mit"), _local_model(tmp_path, "b", "mit")
    assert derived_license([Ref(id=mit_a), Ref(id=mit_b)]) == "mit"
    unknown = _local_model(tmp_path, "c", None)
    text = render_model_card(model_name="m", intended_use="u", limitations="l",
                             base_models=[{"id": mit_a, "revision": None}, {"id": BUNDLED[0], "revision": None},
                                          {"id": unknown, "revision": None}])
    assert _front(text)["license"] == "other"  # they differ, or one is unknown: no single license is claimed
    assert f"`{mit_a}`: mit" in text and f"`{BUNDLED[0]}`: apache-2.0" in text
    assert f"`{unknown}`: not stated (check its model page)" in text


def test_license_from_the_config_wins(tmp_path):
    text = render_model_card(model_name="m", intended_use="u", limitations="l", license="cc-by-4.0",
                             base_models=[{"id": BUNDLED[0], "revision": None}])
    assert _front(text)["license"] == "cc-by-4.0"


def test_datasets_are_hub_ids_only_and_metrics_are_a_model_index(tmp_path):
    local = tmp_path / "my_data"
    local.mkdir()
    text = render_model_card(
        model_name="m", intended_use="u", limitations="l", base_models=[{"id": BUNDLED[0], "revision": None}],
        datasets=["HuggingFaceM4/VQAv2", str(local), "easy-vqa", "./relative/missing"], metrics={"accuracy": 0.9},
        eval_task="visual-question-answering", eval_dataset=str(local),
    )
    front = _front(text)
    assert front["datasets"] == ["HuggingFaceM4/VQAv2", "easy-vqa"]
    assert str(tmp_path) not in text.split("---")[1]  # no local path anywhere in the front matter
    card = ModelCard(text)
    (result,) = card.data.eval_results
    assert (result.task_type, result.dataset_type, result.metric_type, result.metric_value) == (
        "visual-question-answering", "my_data", "accuracy", 0.9)
    index = front["model-index"][0]["results"][0]
    assert index["task"]["type"] == "visual-question-answering" and index["metrics"][0]["value"] == 0.9


def test_card_from_folder_without_a_license_derives_it(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "vljepa", "x_encoder_id": BUNDLED[0],
                                                      "y_encoder_id": BUNDLED[1]}))
    assert card_from_folder(tmp_path, kind="vljepa", repo_id="me/vl").license == "apache-2.0"
    assert card_from_folder(tmp_path, kind="vljepa", repo_id="me/vl", license="mit").license == "mit"
