"""Recipes and configuration: every shipped recipe parses, overrides win, bad keys and values are errors."""

from pathlib import Path

import pytest
import yaml

from jepa_core.config import ConfigError
from llm_jepa.arguments import JepaObjectiveConfig, LLMJepaModelArguments, LLMJepaTrainingArguments
from llm_jepa.cli import main as cli_main
from llm_jepa.run import parse_training_config

ROOT = Path(__file__).resolve().parents[2]
RECIPES = sorted((ROOT / "recipes" / "llm_jepa").glob("*.yaml"))
ACCELERATE = sorted((ROOT / "recipes" / "accelerate").glob("*.yaml"))
DEFAULT = ROOT / "recipes" / "llm_jepa" / "regex-smollm2-lora.yaml"


@pytest.mark.parametrize("recipe", RECIPES, ids=[p.stem for p in RECIPES])
def test_recipe_parses_and_documents_itself(recipe, tmp_path):
    model_args, data_args, train_args = parse_training_config([str(recipe), "--output_dir", str(tmp_path)])
    assert train_args.output_dir == str(tmp_path)
    header = recipe.read_text().split("\n", 12)
    assert all(any(word in line for line in header) for word in ("Hardware", "Launch", "Expected"))
    assert model_args.peft in ("none", "lora", "qlora") and data_args.dataset


def test_default_recipe_values_and_overrides():
    model_args, data_args, train_args = parse_training_config(
        [str(DEFAULT), "--jepa_loss", "infonce", "--num_pred_tokens", "3", "--jepa_stop_gradient"]
    )
    assert model_args.model_name_or_path == "HuggingFaceTB/SmolLM2-135M-Instruct" and model_args.peft == "lora"
    assert data_args.dataset == "regex-synth"
    assert train_args.jepa_loss == "infonce" and train_args.num_pred_tokens == 3 and train_args.jepa_stop_gradient
    assert train_args.jepa_mode == "packed" and train_args.jepa_loss_weight == 1.0
    assert train_args.remove_unused_columns is False


def test_unknown_recipe_key_is_an_error(tmp_path):
    recipe = tmp_path / "bad.yaml"
    recipe.write_text(yaml.safe_dump({"jepa_lambda": 1.0, "output_dir": str(tmp_path)}))
    with pytest.raises(ConfigError, match="jepa_lambda"):
        parse_training_config([str(recipe)])
    with pytest.raises(ConfigError, match="--lbd"):
        parse_training_config([str(DEFAULT), "--lbd", "2"])


@pytest.mark.parametrize(
    "override, match",
    [
        (["--jepa_dropout", "1.5"], "jepa_dropout"),
        (["--num_pred_tokens", "-1"], "num_pred_tokens"),
        (["--remove_unused_columns", "true"], "remove_unused_columns"),
        (["--peft", "qlora", "--save_merged", "true"], "save_merged"),
        (["--lm_loss_weight", "0", "--jepa_loss_weight", "0"], "nothing to train"),
        (["--dataset_kwargs", "{not json"], "dataset_kwargs"),
    ],
)
def test_bad_values_are_errors(override, match):
    with pytest.raises(ConfigError, match=match):
        parse_training_config([str(DEFAULT), *override])


def test_literal_fields_reject_unknown_choices(capsys):
    with pytest.raises(SystemExit):
        parse_training_config([str(DEFAULT), "--jepa_loss", "dot"])
    assert "invalid choice" in capsys.readouterr().err


def test_objective_fields_are_shared_by_the_training_arguments():
    objective = {f for f in JepaObjectiveConfig.__dataclass_fields__}
    assert objective <= set(LLMJepaTrainingArguments.__dataclass_fields__)
    args = LLMJepaTrainingArguments(output_dir="x", jepa_loss_weight=0.0)
    assert not args.uses_jepa and args.objective_dict()["jepa_loss_weight"] == 0.0
    with pytest.raises(ValueError, match="model_name_or_path"):
        LLMJepaModelArguments(model_name_or_path="")


@pytest.mark.parametrize("config", ACCELERATE, ids=[p.stem for p in ACCELERATE])
def test_accelerate_configs_load(config):
    from accelerate.commands.config.config_args import load_config_from_file

    loaded = load_config_from_file(str(config))
    assert loaded.num_processes >= 1
    assert "accelerate launch --config_file recipes/accelerate/" in config.read_text()


def test_cli_dispatch_and_errors(capsys, tmp_path):
    assert cli_main([]) == 2
    assert cli_main(["--help"]) == 0
    assert "train RECIPE.yaml" in capsys.readouterr().out
    assert cli_main(["frobnicate"]) == 2
    assert cli_main(["train", "--help"]) == 0
    assert "jepa_loss_weight" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text("jepa_lamda: 2\n")
    assert cli_main(["train", str(bad)]) == 2
    assert "jepa_lamda" in capsys.readouterr().err


def test_comparison_recipes_differ_only_in_lambda():
    """regex-compare-sft.yaml is regex-compare-jepa.yaml with jepa_loss_weight 0 (and its own output_dir)."""
    folder = ROOT / "recipes" / "llm_jepa"
    jepa = yaml.safe_load((folder / "regex-compare-jepa.yaml").read_text())
    sft = yaml.safe_load((folder / "regex-compare-sft.yaml").read_text())
    differing = {key for key in jepa.keys() | sft.keys() if jepa.get(key) != sft.get(key)}
    assert differing == {"jepa_loss_weight", "output_dir"}
    assert jepa["jepa_loss_weight"] == 1.0 and sft["jepa_loss_weight"] == 0.0
    _, data_args, train_args = parse_training_config([str(folder / "regex-compare-jepa.yaml")])
    assert data_args.dataset_kwargs["n"] == 1000 and train_args.num_pred_tokens == 1
    steps = data_args.dataset_kwargs["n"] // train_args.per_device_train_batch_size * train_args.num_train_epochs
    assert steps == 125  # the arithmetic of the recipe header
