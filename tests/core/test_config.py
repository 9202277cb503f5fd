"""Recipe parsing (YAML + CLI overrides, unknown keys) and run-directory metadata."""

import json
from dataclasses import dataclass, field
from typing import Literal

import pytest
import yaml

from jepa_core.config import ConfigError, parse_config
from jepa_core.rundir import atomic_write_text, write_run_metadata


@dataclass
class ModelArgs:
    model_name: str = field(metadata={"help": "model id"})
    hidden: int = field(default=8, metadata={"help": "width"})

    def __post_init__(self):
        if self.hidden <= 0:
            raise ValueError("hidden must be positive")


@dataclass
class TrainArgs:
    lr: float = field(default=1e-3, metadata={"help": "learning rate"})
    loss: Literal["cosine", "l2"] = field(default="cosine", metadata={"help": "loss"})
    tags: list[str] = field(default_factory=list, metadata={"help": "tags"})


def _recipe(tmp_path, data):
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def test_yaml_values_and_cli_overrides(tmp_path):
    recipe = _recipe(tmp_path, {"model_name": "m", "lr": 0.5, "loss": "l2", "tags": ["a", "b"]})
    model, train = parse_config((ModelArgs, TrainArgs), [recipe, "--lr", "0.25"])
    assert model.model_name == "m" and model.hidden == 8
    assert train.lr == 0.25 and train.loss == "l2" and train.tags == ["a", "b"]


def test_required_field_from_cli_only():
    (model, _) = parse_config((ModelArgs, TrainArgs), ["--model_name", "x"])
    assert model.model_name == "x"


def test_unknown_recipe_key_names_file_and_suggests(tmp_path):
    recipe = _recipe(tmp_path, {"model_name": "m", "lrr": 0.1})
    with pytest.raises(ConfigError) as err:
        parse_config((ModelArgs, TrainArgs), [recipe])
    message = str(err.value)
    assert "recipe.yaml" in message and "'lrr'" in message and "did you mean 'lr'" in message


def test_unknown_cli_flag_fails():
    with pytest.raises(ConfigError, match="--nope"):
        parse_config((ModelArgs, TrainArgs), ["--model_name", "m", "--nope", "1"])


def test_validation_runs_on_merged_values(tmp_path):
    recipe = _recipe(tmp_path, {"model_name": "m", "hidden": 4})
    with pytest.raises(ValueError, match="hidden must be positive"):
        parse_config((ModelArgs, TrainArgs), [recipe, "--hidden", "0"])


def test_missing_and_malformed_recipe(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        parse_config((ModelArgs,), [str(tmp_path / "missing.yaml")])
    bad = tmp_path / "bad.yaml"
    bad.write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match="bad.yaml"):
        parse_config((ModelArgs,), [str(bad)])


def test_run_metadata_written(tmp_path):
    model, train = parse_config((ModelArgs, TrainArgs), ["--model_name", "m"])
    run = write_run_metadata(tmp_path / "run", {"model": model, "training": train}, argv=["x"])
    resolved = yaml.safe_load((run / "config.yaml").read_text())
    assert resolved["model"]["model_name"] == "m" and resolved["training"]["loss"] == "cosine"
    info = json.loads((run / "run_info.json").read_text())
    assert info["package_version"] and "commit" in info["git"] and info["argv"] == ["x"]


def test_atomic_write_keeps_old_file_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "metrics.json"
    atomic_write_text(target, "old")

    def boom(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("os.replace", boom)
    with pytest.raises(OSError):
        atomic_write_text(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


@dataclass
class AliasArgs:
    """Arguments with an alias."""

    resume: bool = field(default=False, metadata={"help": "resume", "aliases": ["--resume_from_checkpoint"]})


def test_config_flag_is_the_recipe(tmp_path):
    recipe = _recipe(tmp_path, {"model_name": "m", "lr": 0.5})
    for argv in (["--config", recipe, "--lr", "0.25"], ["--lr", "0.25", f"--config={recipe}"]):
        model, train = parse_config((ModelArgs, TrainArgs), argv)
        assert model.model_name == "m" and train.lr == 0.25
    with pytest.raises(ConfigError, match="two recipes"):
        parse_config((ModelArgs, TrainArgs), [recipe, "--config", recipe])
    with pytest.raises(ConfigError, match="--config needs a recipe file"):
        parse_config((ModelArgs, TrainArgs), ["--config"])
    with pytest.raises(ConfigError, match="given 2 times"):
        parse_config((ModelArgs, TrainArgs), ["--config", recipe, "--config", recipe])


def test_alias_flag_and_recipe_key(tmp_path):
    assert parse_config((AliasArgs,), ["--resume_from_checkpoint", "true"])[0].resume is True
    assert parse_config((AliasArgs,), ["--resume", "true"])[0].resume is True
    assert parse_config((AliasArgs,), [_recipe(tmp_path, {"resume_from_checkpoint": True})])[0].resume is True


def test_help_groups_fields_by_dataclass(capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_config((ModelArgs, TrainArgs, AliasArgs), ["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out.split("\n\n", 1)[1]  # after the usage line
    assert "--config RECIPE.yaml" in text
    assert text.index("ModelArgs:") < text.index("--hidden") < text.index("TrainArgs:") < text.index("--lr")
    assert text.index("AliasArgs:") < text.index("--resume_from_checkpoint")
    assert "Arguments with an alias." in text and "learning rate" in text


def test_json_mapping_options_parse_alike_in_every_package():
    """One parser for every dict-valued option (VL-JEPA recipes, the decoder, LLM-JEPA data and eval)."""
    from jepa_core.config import json_mapping_text, parse_json_mapping
    from llm_jepa.arguments import DataArguments
    from llm_jepa.evaluate import LLMJepaEvalArguments
    from vljepa.decoding.training import DecoderTrainingArguments

    assert parse_json_mapping('{"b": 1, "a": 2}', "x") == {"b": 1, "a": 2}
    assert parse_json_mapping({"a": 1}, "x") == {"a": 1}  # a YAML mapping
    assert parse_json_mapping(None, "x") == parse_json_mapping("", "x") == {}
    assert json_mapping_text({"b": 1, "a": 2}, "x") == '{"a": 2, "b": 1}'
    with pytest.raises(ValueError, match="opts is not valid JSON"):
        parse_json_mapping("{nope", "opts")
    with pytest.raises(TypeError, match="opts must be a JSON object"):
        parse_json_mapping("[1]", "opts")
    for make in (
        lambda value: DataArguments(dataset_kwargs=value),
        lambda value: DecoderTrainingArguments(output_dir="x", caption_dataset_options=value),
        lambda value: LLMJepaEvalArguments(model="m", output_dir="o", dataset_kwargs=value),
    ):
        with pytest.raises(TypeError, match="must be a JSON object"):
            make("[1]")
        with pytest.raises(ValueError, match="is not valid JSON"):
            make("{nope")
    assert DataArguments(dataset_kwargs='{"n": 3}').dataset_kwargs == {"n": 3}


def test_run_info_records_packages_hardware_and_threads(tmp_path):
    import hashlib
    import importlib.metadata

    import torch

    @dataclass
    class Args:
        lr: float = field(default=0.1, metadata={"help": "learning rate"})

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        write_run_metadata(tmp_path, {"training": Args()}, argv=["x"])
    finally:
        torch.set_num_threads(previous)
    env = json.loads((tmp_path / "run_info.json").read_text())["environment"]
    packages = (tmp_path / env["packages_file"]).read_text()
    assert hashlib.sha256(packages.encode()).hexdigest() == env["packages_sha256"]
    lines = packages.splitlines()
    assert len(lines) == env["num_packages"] and lines == sorted(lines, key=lambda line: line.split("==")[0].lower().replace("_", "-"))
    for name in ("torch", "transformers", "numpy"):
        assert f"{importlib.metadata.metadata(name)['Name']}=={importlib.metadata.version(name)}" in lines
    assert env["torch_num_threads"] == 1 and env["cpu"] and env["cpu_count"] >= 1
    assert env["gpus"] == [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
