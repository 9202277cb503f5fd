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
