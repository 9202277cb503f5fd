"""``--help`` for recipe dataclasses without importing the library that defines some of them.

``llm-jepa train --help`` lists every field of its recipe, ``transformers.TrainingArguments``' included. Importing
transformers' training arguments imports torch, peft and more (seconds on a small machine) just to print text, so
:func:`source_fields_help` reads that dataclass from its source file with :mod:`ast` (the installed version, not
imported) and :func:`fields_help` reads light dataclasses directly. :func:`print_help` prints them grouped by
dataclass, each flag with its type, help string and default, as :func:`jepa_core.config.parse_config` accepts them.

A source file this reader does not understand gives ``None``: the caller then falls back to importing the class.

>>> from dataclasses import dataclass, field
>>> @dataclass
... class Demo:
...     width: int = field(default=8, metadata={"help": "Hidden width."})
>>> fields_help(Demo)
[FieldHelp(name='width', type='int', help='Hidden width.', default='8', choices=())]
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import importlib.util
import sys
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO


@dataclass(frozen=True)
class FieldHelp:
    """One flag of ``--help``: the field's name, type (as written), help string, default (None: required) and
    the allowed values when the type says (a ``Literal``) or the field's metadata lists them."""

    name: str
    type: str
    help: str
    default: str | None = None
    choices: tuple[str, ...] = ()


def _literal_choices(hint: Any) -> tuple[str, ...]:
    """The values of a ``Literal`` annotation (also inside ``X | None``), as text."""
    if typing.get_origin(hint) is typing.Literal:
        return tuple(str(value) for value in typing.get_args(hint))
    for arg in typing.get_args(hint):
        choices = _literal_choices(arg)
        if choices:
            return choices
    return ()


def fields_help(dtype: type) -> list[FieldHelp]:
    """The init fields of an importable dataclass, in declaration order."""
    hints = typing.get_type_hints(dtype)
    out = []
    for f in dataclasses.fields(dtype):
        if not f.init:
            continue
        if f.default is not dataclasses.MISSING:
            default: str | None = str(f.default)
        elif f.default_factory is not dataclasses.MISSING:
            default = str(f.default_factory())
        else:
            default = None
        type_text = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
        out.append(FieldHelp(f.name, type_text, str(f.metadata.get("help", "")), default,
                             _literal_choices(hints.get(f.name))))
    return out


def module_source(module: str) -> Path | None:
    """The source file of ``module`` (``package.sub.name``), found without importing the package."""
    top, *rest = module.split(".")
    try:
        spec = importlib.util.find_spec(top)  # a top-level name: locates the package, runs none of its code
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if not rest:
        return Path(spec.origin) if spec.origin else None
    if not spec.submodule_search_locations:
        return None
    base = Path(next(iter(spec.submodule_search_locations))).joinpath(*rest[:-1])
    for candidate in (base / f"{rest[-1]}.py", base / rest[-1] / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


COMPUTED = " (computed on import)"


def _text(node: ast.expr, constants: dict[str, ast.expr]) -> str:
    """A default's display text: a literal's value, a class-level constant's (assigned once), else the source
    expression; a name assigned under a condition (e.g. depending on the torch version) is marked as computed."""
    if isinstance(node, ast.Name):
        if node.id not in constants:
            return node.id + COMPUTED
        node = constants[node.id]
    try:
        return str(ast.literal_eval(node))
    except ValueError:
        return ast.unparse(node)


def _metadata(node: ast.expr | None) -> dict[str, Any]:
    """The literal entries of a ``metadata={...}`` dict (non-literal values, e.g. computed choices, are left out)."""
    out: dict[str, Any] = {}
    if isinstance(node, ast.Dict):
        for key, value in zip(node.keys, node.values):
            try:
                out[ast.literal_eval(key)] = ast.literal_eval(value)
            except (ValueError, TypeError):
                continue
    return out


def _field_from_source(node: ast.AnnAssign, constants: dict[str, ast.expr]) -> FieldHelp | None:
    name, type_text = node.target.id, ast.unparse(node.annotation)  # type: ignore[union-attr]
    value = node.value
    if not (isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id == "field"):
        return FieldHelp(name, type_text, "", None if value is None else _text(value, constants))
    keywords = {k.arg: k.value for k in value.keywords if k.arg}
    if "init" in keywords and _text(keywords["init"], constants) == "False":
        return None
    if "default" in keywords:
        default: str | None = _text(keywords["default"], constants)
    elif "default_factory" in keywords:
        default = ast.unparse(keywords["default_factory"]) + "()"
    else:
        default = None
    metadata = _metadata(keywords.get("metadata"))
    choices = metadata.get("choices")
    return FieldHelp(name, type_text, str(metadata.get("help", "")), default,
                     tuple(str(c) for c in choices) if isinstance(choices, (list, tuple)) else ())


def source_fields_help(module: str, class_name: str) -> list[FieldHelp] | None:
    """The fields of dataclass ``class_name`` declared in ``module``'s source (not its bases'), read without
    importing it; None when the file or class cannot be read that way (the caller imports the class instead)."""
    path = module_source(module)
    if path is None:
        return None
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError):
        return None
    found = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == class_name]
    if len(found) != 1:
        return None
    assigned = [
        (target.id, node.value)
        for statement in found[0].body for node in ast.walk(statement) if isinstance(node, ast.Assign)
        for target in node.targets if isinstance(target, ast.Name)
    ]
    names = [name for name, _ in assigned]
    constants = {name: value for name, value in assigned if names.count(name) == 1}  # set once, unconditionally
    out = []
    for node in found[0].body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and not node.target.id.startswith("_"):
            item = _field_from_source(node, constants)
            if item is not None:
                out.append(item)
    return out or None


def merge_fields(*groups: Sequence[FieldHelp]) -> list[FieldHelp]:
    """Fields of a dataclass built from bases, in the order ``dataclasses`` gives them: ``groups`` from the first
    base in reverse MRO to the class itself; a later field of the same name replaces the earlier one in place."""
    merged: dict[str, FieldHelp] = {}
    for group in groups:
        for item in group:
            merged[item.name] = item
    return list(merged.values())


def print_help(usage: str, sections: Sequence[tuple[str, str, Sequence[FieldHelp]]], file: TextIO | None = None) -> None:
    """Print ``usage`` and one argparse-formatted group per ``(title, description, fields)`` section."""
    parser = argparse.ArgumentParser(usage=usage, add_help=False)
    parser.add_argument("-h", "--help", action="store_true", help="Show this help and exit.")
    parser.add_argument("--config", metavar="RECIPE.yaml", help="Recipe file (instead of the first argument).")
    for title, description, items in sections:
        group = parser.add_argument_group(title, description or None)
        for item in items:
            metavar = "{" + ",".join(item.choices) + "}" if item.choices else item.type.replace(" ", "")
            default = "required" if item.default is None else f"default: {item.default}"
            text = f"{item.help} ({default})" if item.help else f"({default})"
            group.add_argument(f"--{item.name}", metavar=metavar, help=text.replace("%", "%%"))
    parser.print_help(file or sys.stdout)
