"""Recipe parsing: a YAML file mapped one-to-one onto config dataclasses, plus CLI overrides.

``parse_config((ModelArgs, TrainArgs), ["recipe.yaml", "--learning_rate", "1e-4"])`` reads the YAML,
rejects unknown keys (naming the file, the key and the closest valid name), uses the YAML values as
defaults of an :class:`transformers.HfArgumentParser` and lets command-line flags override them. The recipe
may also be given as ``--config FILE`` (trl's spelling) instead of the first argument. ``--help`` lists every
field with its help string, grouped by dataclass.
Every recipe value is type-checked against its field first (``per_device_train_batch_size: 2.5`` or ``"eight"``
is a :class:`ConfigError` naming the file and the field); command-line values are converted by argparse, which
names the flag. Booleans are ``true``/``false`` (or ``1``/``0``) in both places: ``"yes"`` is refused rather than
guessed. Each dataclass's ``__post_init__`` then validates the merged values.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import enum
import json
import re
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    """A recipe or command line that cannot be turned into valid config objects."""


def parse_json_mapping(value: Any, name: str) -> dict[str, Any]:
    """A mapping option given as JSON text (command line) or as a YAML mapping; ``None`` or ``""`` is ``{}``.

    Raises ``ValueError`` (not JSON) or ``TypeError`` (not a mapping) naming the option ``name``.
    """
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as err:
            raise ValueError(f"{name} is not valid JSON: {err}") from err
    if not isinstance(value, dict):
        raise TypeError(f"{name} must be a JSON object (a mapping), got {type(value).__name__}")
    return value


def json_mapping_text(value: Any, name: str) -> str:
    """:func:`parse_json_mapping`, normalised to sorted JSON text (a config field that stays a string)."""
    return json.dumps(parse_json_mapping(value, name), sort_keys=True)


def load_recipe(path: str | Path) -> dict[str, Any]:
    """Read a recipe YAML into a flat mapping. Raises :class:`ConfigError` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"recipe file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from err
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a recipe must be a mapping of field: value, got {type(data).__name__}")
    return data


def _field_names(dataclass_types: Sequence[type]) -> dict[str, type]:
    names: dict[str, type] = {}
    for dtype in dataclass_types:
        for f in dataclasses.fields(dtype):
            if f.init:
                names.setdefault(f.name, dtype)
    return names


def check_keys(data: dict[str, Any], dataclass_types: Sequence[type], source: str) -> None:
    """Raise :class:`ConfigError` for keys that no dataclass defines, with a suggestion."""
    known = _field_names(dataclass_types)
    unknown = [k for k in data if k not in known]
    if unknown:
        lines = []
        for key in unknown:
            close = difflib.get_close_matches(key, list(known), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            lines.append(f"  - '{key}'{hint}")
        valid = ", ".join(t.__name__ for t in dataclass_types)
        raise ConfigError(
            f"{source}: unknown recipe key(s):\n" + "\n".join(lines) + f"\nValid keys are the fields of {valid}."
        )


_INT = re.compile(r"[+-]?\d+")
_BOOL_WORDS = {"true": True, "false": False, "1": True, "0": False}


def parse_bool(value: str | bool) -> bool:
    """``true``/``false``/``1``/``0`` (any case) -> bool; anything else is an ``argparse.ArgumentTypeError``."""
    if isinstance(value, bool):
        return value
    try:
        return _BOOL_WORDS[str(value).strip().lower()]
    except KeyError:
        raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}") from None


def _type_error(value: Any, annotation: Any) -> str | None:
    """Why ``value`` (from YAML) does not fit ``annotation``, or None when it does."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Union or (hasattr(types, "UnionType") and isinstance(annotation, types.UnionType)):
        if value is None and type(None) in args:
            return None
        errors = [_type_error(value, arg) for arg in args if arg is not type(None)]
        return None if any(e is None for e in errors) else " or ".join(e for e in errors if e)
    if origin is typing.Literal:
        return None if value in args else f"expected one of {', '.join(repr(a) for a in args)}"
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        allowed = [m.value for m in annotation]
        return None if value in allowed or value in annotation.__members__ else f"expected one of {allowed}"
    if annotation is bool:
        if isinstance(value, bool) or (isinstance(value, str) and value.strip().lower() in _BOOL_WORDS):
            return None
        return "expected true or false"
    if annotation is int:
        if (isinstance(value, int) and not isinstance(value, bool)) or (isinstance(value, str) and _INT.fullmatch(value.strip())):
            return None
        return "expected an integer"
    if annotation is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return None
        if isinstance(value, str):
            try:
                float(value)
                return None
            except ValueError:
                pass
        return "expected a number"
    if origin is list or annotation is list:
        if not isinstance(value, (list, tuple)):
            return "expected a list"
        inner = args[0] if args else Any
        for item in value:
            error = _type_error(item, inner)
            if error:
                return f"list item {item!r}: {error}"
        return None
    if origin is dict or annotation is dict:
        return None if isinstance(value, (dict, str)) else "expected a mapping"
    if annotation is str:
        return None if not isinstance(value, bool) else "expected a string"
    return None  # other annotations (Any, custom types) are left to the dataclass


def _field_types(dataclass_types: Sequence[type]) -> dict[str, Any]:
    hints: dict[str, Any] = {}
    for dtype in dataclass_types:
        type_hints = typing.get_type_hints(dtype)
        for f in dataclasses.fields(dtype):
            if f.init and f.name not in hints:
                hints[f.name] = type_hints.get(f.name, Any)
    return hints


def check_types(data: dict[str, Any], dataclass_types: Sequence[type], source: str) -> dict[str, Any]:
    """Raise :class:`ConfigError` naming each recipe value whose type does not fit its field; return the values,
    numbers given for text fields turned into text."""
    hints = _field_types(dataclass_types)
    problems, checked = [], {}
    for key, value in data.items():
        annotation = hints.get(key, Any)
        error = _type_error(value, annotation)
        if error:
            problems.append(f"  - {key}: {error}, got {value!r} ({type(value).__name__})")
        elif annotation in (str, str | None) and isinstance(value, (int, float)):
            value = str(value)
        checked[key] = value
    if problems:
        raise ConfigError(f"{source}: value(s) of the wrong type:\n" + "\n".join(problems))
    return checked


def _aliases(dataclass_types: Sequence[type]) -> dict[str, str]:
    """``{alias: field name}`` for fields declaring ``metadata={"aliases": [...]}`` (HfArgumentParser's own key)."""
    aliases: dict[str, str] = {}
    for dtype in dataclass_types:
        for f in dataclasses.fields(dtype):
            names = f.metadata.get("aliases", [])
            for alias in [names] if isinstance(names, str) else names:
                aliases[alias.lstrip("-")] = f.name
    return aliases


def pop_config_flag(argv: list[str]) -> str | None:
    """Remove ``--config FILE`` / ``--config=FILE`` from argv; return FILE (None when absent)."""
    found: list[str] = []
    index = 0
    while index < len(argv):
        arg = argv[index]
        if arg == "--config":
            if index + 1 >= len(argv) or argv[index + 1].startswith("-"):
                raise ConfigError("--config needs a recipe file: --config RECIPE.yaml")
            found.append(argv[index + 1])
            del argv[index:index + 2]
        elif arg.startswith("--config="):
            found.append(arg.split("=", 1)[1])
            del argv[index]
        else:
            index += 1
    if len(found) > 1:
        raise ConfigError(f"--config given {len(found)} times ({', '.join(found)}); give one recipe")
    return found[0] if found else None


def recipe_first(argv: list[str]) -> list[str]:
    """argv with a ``--config FILE`` recipe moved to the front (where a positional recipe goes)."""
    config_file = pop_config_flag(argv)
    if config_file is None:
        return argv
    if argv and not argv[0].startswith("-"):
        raise ConfigError(f"two recipes: {argv[0]!r} (first argument) and --config {config_file!r}; give one")
    return [config_file, *argv]


def _group_help(parser: argparse.ArgumentParser, dataclass_types: Sequence[type]) -> None:
    """Move each dataclass's flags into an argument group titled after it, so ``--help`` reads by concept."""
    default_group = parser._optionals  # argparse's "options" group, where HfArgumentParser puts the flags
    for dtype in dataclass_types:
        names = {f.name for f in dataclasses.fields(dtype) if f.init}
        summary = (dtype.__doc__ or "").strip().splitlines()
        group = parser.add_argument_group(dtype.__name__, summary[0] if summary else None)
        for action in list(default_group._group_actions):
            if action.dest in names:
                default_group._group_actions.remove(action)
                group._group_actions.append(action)


def parse_config(dataclass_types: Sequence[type], argv: Sequence[str] | None = None) -> tuple[Any, ...]:
    """Parse ``[RECIPE.yaml] [--config RECIPE.yaml] [--field value ...]`` into one instance per dataclass type.

    The recipe, when given, is the first argument or the value of ``--config`` (not both). Later flags win over
    recipe values. A recipe key may use a field's alias (``resume_from_checkpoint`` for ``resume``).
    """
    from transformers import HfArgumentParser  # here, not at module level: `vljepa --help` stays fast

    if "config" in _field_names(dataclass_types):
        raise TypeError("a config dataclass may not define a field named 'config' (it is the --config flag)")
    argv = recipe_first(list(argv or []))
    recipe: dict[str, Any] = {}
    source = "command line"
    config_file = argv.pop(0) if argv and not argv[0].startswith("-") else None
    if config_file is not None:
        source = config_file
        recipe = load_recipe(source)
        aliases = _aliases(dataclass_types)
        recipe = {aliases.get(key, key): value for key, value in recipe.items()}
        check_keys(recipe, dataclass_types, source)
        recipe = check_types(recipe, dataclass_types, source)
    parser = HfArgumentParser(list(dataclass_types))
    # Listed for --help only: the flag was taken out of argv above.
    parser.add_argument("--config", metavar="RECIPE.yaml", default=argparse.SUPPRESS,
                        help="Recipe file (instead of the first argument).")
    _group_help(parser, dataclass_types)
    hints = _field_types(dataclass_types)
    for action in parser._actions:
        if action.dest in recipe:
            action.required = False
        if hints.get(action.dest) in (bool, bool | None):  # not yes/no/t/f/y/n: misread
            action.type = parse_bool
    parser.set_defaults(**recipe)
    try:
        outputs = parser.parse_args_into_dataclasses(args=argv, return_remaining_strings=True)
    except (ValueError, TypeError) as err:
        raise ConfigError(f"{source}: invalid configuration: {err}") from err
    *configs, remaining = outputs
    if remaining:
        raise ConfigError(f"unknown command-line argument(s): {' '.join(remaining)}")
    return tuple(configs)


def config_to_dict(config: Any) -> dict[str, Any]:
    """A YAML-safe dict of a config dataclass (TrainingArguments included)."""
    if hasattr(config, "to_dict"):
        data = config.to_dict()
    else:
        data = dataclasses.asdict(config)
    return {k: _plain(v) for k, v in data.items() if not k.startswith("_")}


def _plain(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "value"):  # enums
        return _plain(value.value)
    return str(value)
