"""report_to: every Accelerate tracker, 'all' and 'none'; unknown or uninstalled trackers fail while parsing."""

from __future__ import annotations

import accelerate.tracking
import pytest

from jepa_core.config import ConfigError, parse_config
from vljepa.training.arguments import VLJEPAModelArguments, VLJEPATrainingArguments
from vljepa.training.trackers import known_trackers, resolve_trackers


def test_names_all_and_none(monkeypatch):
    assert {"tensorboard", "wandb", "mlflow", "comet_ml", "aim", "trackio"} <= set(known_trackers())
    assert resolve_trackers("none") == [] and resolve_trackers("") == []
    assert resolve_trackers("tensorboard") == ["tensorboard"]
    monkeypatch.setattr(accelerate.tracking, "is_wandb_available", lambda: True)
    assert resolve_trackers(" tensorboard, wandb,tensorboard") == ["tensorboard", "wandb"]
    installed = resolve_trackers("all")
    assert "tensorboard" in installed and "wandb" in installed
    monkeypatch.setattr(accelerate.tracking, "is_wandb_available", lambda: False)
    assert "wandb" not in resolve_trackers("all")


def test_unknown_and_uninstalled_trackers_are_clear_errors(monkeypatch):
    with pytest.raises(ValueError, match=r"unknown tracker 'wandbb' \(did you mean 'wandb'\?\)"):
        resolve_trackers("wandbb")
    monkeypatch.setattr(accelerate.tracking, "is_comet_ml_available", lambda: False)
    with pytest.raises(ValueError, match="'comet_ml' tracker is not installed: pip install comet-ml"):
        resolve_trackers("tensorboard,comet_ml")
    with pytest.raises(ValueError, match="cannot be combined"):
        resolve_trackers("all,wandb")


def test_checked_when_the_arguments_are_parsed(monkeypatch):
    monkeypatch.setattr(accelerate.tracking, "is_mlflow_available", lambda: False)
    base = ["--query_dataset", "x", "--eval_task", "none"]
    with pytest.raises(ConfigError, match="pip install mlflow"):
        parse_config((VLJEPAModelArguments, VLJEPATrainingArguments), [*base, "--report_to", "mlflow"])
    _, args = parse_config((VLJEPAModelArguments, VLJEPATrainingArguments), base)
    assert args.report_to == "tensorboard" and args.trackers == ["tensorboard"]  # the default
    monkeypatch.setattr(accelerate.tracking, "is_mlflow_available", lambda: True)
    _, args = parse_config((VLJEPAModelArguments, VLJEPATrainingArguments), [*base, "--report_to", "tensorboard,mlflow"])
    assert args.trackers == ["tensorboard", "mlflow"]
