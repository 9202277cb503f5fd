"""Packaging: the wheel carries every package, the typing marker and the licence; installed with [all] into a
clean virtual environment, every module imports.

Both tests are marked slow. The clean-venv install runs by default (``make test``, CI): it first installs the
CPU build of the running torch's version (``torch==X+cpu``, from https://download.pytorch.org/whl/cpu when that
is reachable, else from pip's own configured sources, e.g. a local wheel in its ``find-links``; never PyPI's CUDA
build), then the wheel with ``[all]``, pinned like ``make install`` (torch, and constraints/cpu-py311.txt on
Python 3.11). It is skipped, saying why, when no package index is reachable or no CPU torch wheel can be found.
A wheelhouse (JEPA_WHEELHOUSE=DIR of wheels) makes it run offline.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import urllib.request
import venv
import zipfile
from importlib.metadata import version
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("jepa_core", "vljepa", "llm_jepa", "eval")

pytestmark = pytest.mark.slow


def _build_wheel(out: Path) -> Path:
    # Built from a copy: an in-tree build/ folder keeps files deleted since the last build, which would be packed.
    source = out / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "dist", "runs", "*.egg-info", "__pycache__", ".pytest_cache", ".ruff_cache"))
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-build-isolation", "--no-deps", "-q", "-w", str(out), str(source)],
        capture_output=True, text=True, timeout=600, check=False,
    )
    assert result.returncode == 0, result.stderr
    (wheel,) = out.glob("jepa_hf-*.whl")
    return wheel


def test_wheel_contents(tmp_path):
    wheel = _build_wheel(tmp_path)
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        metadata = archive.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    for package in PACKAGES:
        assert f"{package}/__init__.py" in names and f"{package}/py.typed" in names, package
    assert "jepa_torchvision_compat.py" in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    for extra in ("qlora", "eval", "plots", "selective", "bundled", "trl", "lm-eval", "all"):
        assert f"Provides-Extra: {extra}" in metadata
    assert "Requires-Dist: transformers<6,>=5.0" in metadata


PYPI = "https://pypi.org/simple/pip/"
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def _reachable(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=5)
    except OSError:
        return False
    return True


def _pip(python: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(python), "-m", "pip", "install", "-q", *args], capture_output=True, text=True,
                          timeout=3600, check=False)


def _install_cpu_torch(python: Path, wheelhouse: str | None) -> str:
    """Install ``torch==X+cpu`` (X: this interpreter's torch) into the clean venv; return the requirement.

    Skips the test when no CPU wheel can be found (never falls back to PyPI's CUDA build)."""
    requirement = f"torch=={version('torch').split('+')[0]}+cpu"
    if wheelhouse:
        result = _pip(python, "--no-index", "--find-links", wheelhouse, requirement)
    elif _reachable(TORCH_CPU_INDEX + "/torch/"):
        result = _pip(python, "--index-url", TORCH_CPU_INDEX, requirement)
    else:  # pip's configured sources (a local wheel in find-links, a mirror): the CPU wheel or nothing
        result = _pip(python, requirement)
        if result.returncode != 0 and "No matching distribution" in result.stderr:
            pytest.skip(f"{requirement}: {TORCH_CPU_INDEX} is unreachable and pip's configured sources have no such "
                        "wheel (put it in JEPA_WHEELHOUSE or pip's find-links)")
    assert result.returncode == 0, result.stderr[-4000:]
    return requirement


def test_clean_install_with_all_extras_imports_every_module(tmp_path):
    wheelhouse = os.environ.get("JEPA_WHEELHOUSE")
    if not wheelhouse and not _reachable(PYPI):
        pytest.skip(f"no package index reachable ({PYPI}) and no JEPA_WHEELHOUSE of local wheels")
    wheel = _build_wheel(tmp_path / "dist")
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    torch_pin = tmp_path / "torch-constraint.txt"
    torch_pin.write_text(_install_cpu_torch(python, wheelhouse) + "\n")
    pins = ["-c", str(torch_pin)]  # nothing may replace the CPU torch
    if sys.version_info[:2] == (3, 11):  # the versions `make install` pins (frozen on Python 3.11)
        pins += ["-c", str(ROOT / "constraints" / "cpu-py311.txt")]
    source = ["--no-index", "--find-links", wheelhouse] if wheelhouse else []
    install = _pip(python, *source, *pins, f"{wheel}[all]")
    assert install.returncode == 0, install.stderr[-4000:]
    modules = sorted(
        ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for package in PACKAGES for path in (ROOT / package).rglob("*.py")
    )
    code = (
        "import importlib, sys, torch\nassert torch.version.cuda is None, torch.__version__\n"
        "for name in sys.argv[1:]:\n    importlib.import_module(name)\nprint('ok')"
    )
    result = subprocess.run([str(python), "-c", code, *modules], capture_output=True, text=True, timeout=1200,
                            cwd=tmp_path, check=False)  # cwd: not the checkout, so the installed wheel is imported
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-4000:]
