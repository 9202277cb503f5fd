"""The shipped constraints file pins every package of the reference environment, and the install uses it by
default (``CONSTRAINTS=`` opts out)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONSTRAINTS = ROOT / "constraints" / "cpu-py311.txt"


def test_constraints_pin_exact_versions_and_leave_torch_alone():
    pins = [line for line in CONSTRAINTS.read_text().splitlines() if line and not line.startswith("#")]
    assert len(pins) > 50
    names = set()
    for line in pins:
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s=]+)", line)
        assert match, f"not an exact pin: {line!r}"
        names.add(match.group(1).lower().replace("_", "-"))
    assert {"transformers", "accelerate", "datasets", "numpy", "huggingface-hub"} <= names
    assert not names & {"torch", "torchvision", "jepa-hf"}  # torch: install_env.sh's policy; the project itself


def test_make_install_uses_the_constraints_by_default_and_can_opt_out():
    def dry_run(*extra: str) -> str:
        return subprocess.run(["make", "-n", "-B", "install", "VENV=/nonexistent-venv", *extra], cwd=ROOT,
                              capture_output=True, text=True, check=True, timeout=60).stdout

    assert 'CONSTRAINTS="constraints/cpu-py311.txt" bash scripts/install_env.sh' in dry_run()
    assert 'CONSTRAINTS="" bash scripts/install_env.sh' in dry_run("CONSTRAINTS=")
    script = (ROOT / "scripts" / "install_env.sh").read_text()
    assert 'PINS+=(-c "$CONSTRAINTS")' in script and '-e ".[all,dev]"' in script
