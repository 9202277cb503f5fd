"""Run directories: every run records its resolved config, package version and git commit.

Secrets are never recorded: a config field or command-line flag whose name says it holds a token, key, password
or secret (``hub_token``, ``wandb_api_key``, ``db_password`` ...; see :func:`is_secret_name`) is written as
``<redacted>`` in ``config.yaml``, ``run_info.json`` and anything else built with :func:`redact_config` /
:func:`redact_argv`, and so is any other occurrence of its value (or of ``$HF_TOKEN``). Pass tokens through
``HF_TOKEN`` or ``hf auth login`` rather than flags, as ``transformers`` recommends.
"""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from jepa_core.atomic import atomic_write_text
from jepa_core.config import config_to_dict

__all__ = [
    "REDACTED", "atomic_write_text", "git_commit", "is_secret_name", "redact_argv", "redact_config", "write_json",
    "write_run_metadata",
]

REDACTED = "<redacted>"
# A name is secret when its last word is one of these (hub_token, api_key) or it contains a word of the second
# set anywhere (password_file). Words are split at "_", "-", "." and case changes, so "x_encoder_token_selection"
# or "num_pred_tokens" are not secrets.
_SECRET_LAST_WORDS = {"token", "key", "apikey", "password", "passwd", "secret", "credential", "credentials"}
_SECRET_ANY_WORDS = {"password", "passwd", "secret", "secrets", "credential", "credentials", "apikey"}
_WORD_SPLIT = re.compile(r"[_\-.\s]+|(?<=[a-z0-9])(?=[A-Z])")
_MIN_SECRET_LENGTH = 4  # shorter values ("", "no") are not scrubbed from other text

def git_commit(path: str | Path | None = None) -> dict[str, Any]:
    """The commit of the checkout holding ``path`` (default: this package), and whether it is dirty."""
    cwd = Path(path or Path(__file__).resolve().parent)
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = bool(
            subprocess.run(
                ["git", "status", "--porcelain", "--untracked-files=no"],
                cwd=cwd, capture_output=True, text=True, timeout=10, check=True,
            ).stdout.strip()
        )
        return {"commit": commit, "dirty": dirty}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def is_secret_name(name: str) -> bool:
    """True for a field or flag name that holds a credential: ``hub_token``, ``--wandb-api-key``, ``dbPassword``."""
    words = [w.lower() for w in _WORD_SPLIT.split(name.lstrip("-")) if w]
    if not words:
        return False
    if words[-1] in _SECRET_LAST_WORDS or any(w in _SECRET_ANY_WORDS for w in words):
        return True
    return len(words) >= 2 and words[-2:] == ["api", "key"]


def _collect(value: Any, found: set[str]) -> Any:
    """``value`` with secret-named entries of every nested mapping (and JSON-object text) redacted."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if is_secret_name(str(key)) and item not in (None, "", REDACTED):
                if isinstance(item, str):
                    found.add(item)
                out[key] = REDACTED
            else:
                out[key] = _collect(item, found)
        return out
    if isinstance(value, (list, tuple)):
        return type(value)(_collect(item, found) for item in value)
    if isinstance(value, str) and value.lstrip().startswith("{"):
        try:
            parsed = json.loads(value)
        except ValueError:
            return value
        cleaned = _collect(parsed, found)
        return json.dumps(cleaned, sort_keys=True) if cleaned != parsed else value
    return value


def _known_secrets(extra: set[str]) -> list[str]:
    values = set(extra)
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        if os.environ.get(name):
            values.add(os.environ[name])
    return sorted((v for v in values if len(v) >= _MIN_SECRET_LENGTH), key=len, reverse=True)


def _scrub(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    return text


def _scrub_values(value: Any, secrets: list[str]) -> Any:
    if isinstance(value, str):
        return _scrub(value, secrets)
    if isinstance(value, dict):
        return {key: _scrub_values(item, secrets) for key, item in value.items()}
    if isinstance(value, list):
        return [_scrub_values(item, secrets) for item in value]
    return value


def redact_config(data: dict[str, Any], *, secrets: set[str] | None = None) -> dict[str, Any]:
    """A copy of ``data`` with the values of secret-named keys (at any depth) replaced by ``<redacted>``.

    The redacted values are added to ``secrets`` when given, so other text can be scrubbed of them too.
    """
    found: set[str] = set()
    cleaned = _collect(data, found)
    if secrets is not None:
        secrets.update(found)
    return cleaned


def redact_argv(argv: list[str], *, secrets: set[str] | None = None) -> list[str]:
    """``argv`` with the value of every secret-named flag (``--hub_token X``, ``--hub_token=X``) redacted, and any
    other occurrence of such a value, of a value in ``secrets`` or of ``$HF_TOKEN`` replaced by ``<redacted>``."""
    found: set[str] = set(secrets or ())
    out: list[str] = []
    hide_next = False
    for arg in argv:
        if hide_next:
            found.add(arg)
            out.append(REDACTED)
            hide_next = False
            continue
        if arg.startswith("-") and "=" in arg:
            flag, value = arg.split("=", 1)
            if is_secret_name(flag):
                found.add(value)
                out.append(f"{flag}={REDACTED}")
                continue
        elif arg.startswith("-") and is_secret_name(arg):
            hide_next = True
        out.append(arg)
    known = _known_secrets(found)
    return [_scrub(arg, known) for arg in out]


def write_json(path: str | Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def write_run_metadata(run_dir: str | Path, configs: dict[str, Any], *, argv: list[str] | None = None) -> Path:
    """Write ``config.yaml`` (resolved configs by section), ``run_info.json`` and ``packages.txt`` (every installed
    package's version, see :mod:`jepa_core.environment`) into ``run_dir``."""
    from jepa_core import __version__
    from jepa_core.environment import environment_info

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    secrets: set[str] = set()
    resolved = redact_config({name: config_to_dict(cfg) for name, cfg in configs.items()}, secrets=secrets)
    for cfg in configs.values():  # transformers' to_dict already masks *_token fields: collect the real values
        for name, value in vars(cfg).items():
            if is_secret_name(name) and isinstance(value, str):
                secrets.add(value)
    resolved = _scrub_values(resolved, _known_secrets(secrets))  # e.g. a token inside a URL in another field
    atomic_write_text(run_dir / "config.yaml", yaml.safe_dump(resolved, sort_keys=False))
    import torch
    import transformers

    info = {
        "package_version": __version__,
        "git": git_commit(),
        "argv": redact_argv(list(argv if argv is not None else sys.argv), secrets=secrets),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "host": platform.node(),
        # Packages, CPU / GPU and thread counts: what explains a different figure from the same commit and seed.
        "environment": environment_info(run_dir),
    }
    write_json(run_dir / "run_info.json", info)
    return run_dir
