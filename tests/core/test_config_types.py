"""Config values of the wrong type are refused at parse time, naming the field (recipe YAML and command line, for
the dataclasses of both trainers)."""

from __future__ import annotations

import pytest
import yaml

from jepa_core.config import ConfigError, parse_config
from llm_jepa.run import CONFIG_TYPES as LLM_TYPES
from vljepa.training.arguments import VLJEPAModelArguments, VLJEPATrainingArguments

VL_TYPES = (VLJEPAModelArguments, VLJEPATrainingArguments)
VL_BASE = {"query_dataset": "easyvqa", "eval_task": "none"}
LLM_BASE = {"model_name_or_path": "m", "dataset": "regex-synth", "output_dir": "out", "max_steps": 2}


def _recipe(tmp_path, data):
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


@pytest.mark.parametrize("types, base", [(VL_TYPES, VL_BASE), (LLM_TYPES, LLM_BASE)], ids=["vljepa", "llm-jepa"])
@pytest.mark.parametrize("field, value, expected", [
    ("per_device_train_batch_size", 2.5, "expected an integer"),
    ("per_device_train_batch_size", "eight", "expected an integer"),
    ("per_device_train_batch_size", True, "expected an integer"),
    ("learning_rate", "fast", "expected a number"),
    ("learning_rate", [1, 2], "expected a number"),
    ("seed", None, "expected an integer"),
])
def test_recipe_values_of_the_wrong_type_name_file_and_field(tmp_path, types, base, field, value, expected):
    recipe = _recipe(tmp_path, {**base, field: value})
    with pytest.raises(ConfigError) as info:
        parse_config(types, [recipe])
    message = str(info.value)
    assert "recipe.yaml" in message and f"{field}: {expected}" in message and repr(value) in message


@pytest.mark.parametrize("types, base, field", [
    (VL_TYPES, VL_BASE, "cache_features"), (LLM_TYPES, LLM_BASE, "jepa_stop_gradient"),
], ids=["vljepa", "llm-jepa"])
def test_booleans_are_true_or_false(tmp_path, capsys, types, base, field):
    recipe = _recipe(tmp_path, {**base, field: "yes"})  # quoted in YAML: a string, not YAML's boolean
    with pytest.raises(ConfigError, match=f"{field}: expected true or false, got 'yes'"):
        parse_config(types, [recipe])
    with pytest.raises(SystemExit) as info:  # the command line: argparse names the flag
        parse_config(types, [_recipe(tmp_path, base), f"--{field}", "yes"])
    assert info.value.code == 2
    assert f"argument --{field}/" in (err := capsys.readouterr().err) and "expected true or false, got 'yes'" in err
    for text, expected in (("true", True), ("False", False), ("1", True), ("0", False)):
        parsed = parse_config(types, [_recipe(tmp_path, base), f"--{field}", text])
        assert getattr(parsed[-1] if hasattr(parsed[-1], field) else parsed[0], field) is expected


@pytest.mark.parametrize("types, base", [(VL_TYPES, VL_BASE), (LLM_TYPES, LLM_BASE)], ids=["vljepa", "llm-jepa"])
def test_cli_int_flag_with_a_float_names_the_flag(tmp_path, capsys, types, base):
    with pytest.raises(SystemExit):
        parse_config(types, [_recipe(tmp_path, base), "--per_device_train_batch_size", "2.5"])
    err = capsys.readouterr().err
    assert "argument --per_device_train_batch_size" in err and "invalid int value: '2.5'" in err


def test_yaml_text_forms_still_parse(tmp_path):
    """YAML reads 1e-4 as text and users quote numbers: those convert as on the command line."""
    recipe = _recipe(tmp_path, {**VL_BASE, "learning_rate": "1e-4", "per_device_train_batch_size": "8",
                                "cache_features": "false", "x_encoder_revision": 2024})
    model, args = parse_config(VL_TYPES, [recipe])
    assert args.learning_rate == 1e-4 and args.per_device_train_batch_size == 8 and args.cache_features is False
    assert model.x_encoder_revision == "2024"
