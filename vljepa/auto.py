"""Load any saved model of this package by the ``model_type`` in its ``config.json``."""

from __future__ import annotations

import json
from pathlib import Path

from vljepa.persistence import CONFIG_NAME, resolve


def model_classes() -> dict[str, type]:
    """``model_type`` -> model class (a registry, not name sniffing)."""
    from vljepa.baseline import DualEncoderConfig, DualEncoderModel
    from vljepa.configuration import VLJEPAConfig
    from vljepa.modeling import VLJEPAModel

    return {VLJEPAConfig.model_type: VLJEPAModel, DualEncoderConfig.model_type: DualEncoderModel}


def load_pretrained(model_id_or_path: str | Path, *, revision: str | None = None, device: str | None = None):
    """A :class:`~vljepa.modeling.VLJEPAModel` or :class:`~vljepa.baseline.DualEncoderModel` from a folder or id."""
    folder = resolve(str(model_id_or_path), revision)
    config_file = folder / CONFIG_NAME
    if not config_file.is_file():
        raise FileNotFoundError(f"{folder} has no {CONFIG_NAME}: not a saved vljepa model")
    model_type = json.loads(config_file.read_text()).get("model_type")
    classes = model_classes()
    if model_type not in classes:
        raise ValueError(f"{config_file}: model_type {model_type!r} is not one of {sorted(classes)}")
    return classes[model_type].from_pretrained(folder, device=device)
