"""Start-up cost: importing the packages and `--help` import no torch / torchvision, and print no warnings."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _env(**extra: str) -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]), **extra)


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-W", "default", "-c", code], capture_output=True, text=True,
                          env=_env(), cwd=ROOT, timeout=120, check=False)


def test_importing_the_packages_imports_no_heavy_library():
    result = _run(
        "import sys, jepa_core, vljepa, llm_jepa, jepa_core.config, jepa_core.cli\n"
        "print(sorted(m for m in ('torch', 'torchvision', 'transformers', 'timm', 'accelerate') if m in sys.modules))"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
    assert "Warning" not in result.stderr


@pytest.mark.parametrize("module", ["vljepa.cli", "llm_jepa.cli"])
def test_help_is_light_and_quiet(module):
    result = _run(
        f"import sys\nfrom {module} import main\nassert main(['--help']) == 0\n"
        "print(sorted(m for m in ('torch', 'torchvision', 'transformers') if m in sys.modules), file=sys.stderr)"
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "[]"  # no warning, no heavy import
    assert "usage:" in result.stdout


def test_help_of_train_lists_every_field_with_its_help():
    from dataclasses import fields

    from vljepa.training.arguments import VLJEPAModelArguments, VLJEPATrainingArguments

    result = subprocess.run([sys.executable, "-m", "vljepa.cli", "train", "--help"], capture_output=True, text=True,
                            cwd=ROOT, timeout=300, env=_env(COLUMNS="400"), check=False)
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    for dtype in (VLJEPAModelArguments, VLJEPATrainingArguments):
        assert f"{dtype.__name__}:" in text
        for f in fields(dtype):
            assert f"--{f.name}" in text
            assert " ".join(f.metadata["help"].split()) in text, f.name
    assert "--config" in text and "--resume_from_checkpoint" in text


HEAVY = ("torch", "transformers", "peft", "datasets", "accelerate", "timm", "torchvision")


def test_llm_jepa_train_help_imports_no_heavy_library_and_lists_every_field():
    from dataclasses import fields

    from llm_jepa.run import config_types

    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "llm_jepa.cli", "train", "--help"],
                            capture_output=True, text=True, cwd=ROOT, timeout=120, env=_env(COLUMNS="400"), check=False)
    assert result.returncode == 0, result.stderr
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time")}
    assert not imported & set(HEAVY), sorted(imported & set(HEAVY))
    text = " ".join(result.stdout.split())
    for dtype in config_types():
        assert f"{dtype.__name__}:" in text
        for f in fields(dtype):
            if f.init:
                assert f"--{f.name} " in text, f.name
                assert " ".join(str(f.metadata.get("help", "")).split()) in text, f.name
    assert "--jepa_loss {cosine,l2,mse,infonce}" in text and "(default: cosine)" in text
    assert "--remove_unused_columns bool Must stay False" in text  # LLM-JEPA's definition wins over transformers'


def test_training_arguments_read_from_source_match_the_class():
    from dataclasses import MISSING, fields

    from transformers import TrainingArguments

    from jepa_core.config_help import COMPUTED, source_fields_help

    read = {item.name: item for item in source_fields_help("transformers.training_args", "TrainingArguments")}
    real = [f for f in fields(TrainingArguments) if f.init and not f.name.startswith("_")]
    assert list(read) == [f.name for f in real]
    for f in real:
        assert read[f.name].help == f.metadata.get("help", ""), f.name
        if (read[f.name].default or "").endswith(COMPUTED):  # e.g. optim: adamw_torch_fused with torch >= 2.8
            continue
        if f.default is not MISSING and isinstance(f.default, (str, int, float, bool, type(None))):
            assert read[f.name].default == str(f.default), f.name


def test_train_help_falls_back_to_importing_when_the_source_cannot_be_read(monkeypatch, capsys):
    import jepa_core.config_help
    from llm_jepa.run import print_train_help

    monkeypatch.setattr(jepa_core.config_help, "source_fields_help", lambda module, name: None)
    print_train_help()
    text = capsys.readouterr().out
    assert "usage: llm-jepa train" in text and "--learning_rate" in text and "--jepa_loss" in text
