"""Saving and loading models built from a config plus pretrained encoders referred to by id and revision.

A saved model folder holds ``config.json`` and ``model.safetensors``. The safetensors file holds only what
training changed: frozen pretrained parts (a frozen X-encoder, a frozen Y-encoder, untrained LM token
embeddings) are left out and rebuilt from their hub id and revision on load, so they are never duplicated.
``from_pretrained`` builds the model from the config, loads the saved tensors and checks that every
missing tensor belongs to a frozen part.
"""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path
from typing import Any, ClassVar

import torch
from safetensors.torch import load_file, save_file
from transformers import PreTrainedConfig

from jepa_core.atomic import atomic_path, atomic_write_text

logger = logging.getLogger(__name__)

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"


def resolve(model_id: str, revision: str | None = None) -> Path:
    """A local folder for ``model_id`` through :func:`jepa_core.resolver.resolve_model` (the only resolver)."""
    from jepa_core.resolver import resolve_model

    return resolve_model(model_id, revision)


def recorded_revision(folder: Path, requested: str | None) -> str | None:
    """The revision to record for an encoder loaded from ``folder``.

    The requested revision when one was given; else the bundled revision written by the resolver
    (``jepa_bundled.json``); else the commit hash of a Hub snapshot folder; else None (a local folder).
    """
    if requested is not None:
        return requested
    provenance = folder / "jepa_bundled.json"
    if provenance.is_file():
        return json.loads(provenance.read_text()).get("revision")
    if folder.parent.name == "snapshots":
        return folder.name
    return None


class PersistenceMixin:
    """``save_pretrained`` / ``from_pretrained`` / ``push_to_hub`` for :class:`torch.nn.Module` models.

    Subclasses set ``config_class``, implement ``from_config(config)`` and ``frozen_prefixes()``.
    """

    config_class: ClassVar[type[PreTrainedConfig]]
    config: PreTrainedConfig

    # ------------------------------------------------------------------------------------------------
    @classmethod
    def from_config(cls, config: PreTrainedConfig) -> Any:  # pragma: no cover - implemented by subclasses
        raise NotImplementedError

    def frozen_prefixes(self) -> list[str]:  # pragma: no cover - implemented by subclasses
        raise NotImplementedError

    def persistent_state_dict(self, state: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
        """The tensors to save: the state dict (``state``, e.g. one gathered from FSDP shards, or this module's
        own) minus frozen pretrained parts."""
        prefixes = tuple(self.frozen_prefixes())
        state = self.state_dict() if state is None else state  # type: ignore[attr-defined]
        return {k: v.detach().cpu().contiguous() for k, v in state.items() if not k.startswith(prefixes)}

    def save_pretrained(self, save_directory: str | Path, *, state_dict: dict[str, torch.Tensor] | None = None) -> Path:
        """Write ``config.json`` and ``model.safetensors`` (each replaced atomically) into ``save_directory``.

        ``state_dict``: the full tensors to write instead of this module's own (the trainer passes the state
        dict it gathered from FSDP shards with ``accelerator.get_state_dict``)."""
        directory = Path(save_directory)
        directory.mkdir(parents=True, exist_ok=True)
        tensors = self.persistent_state_dict(state_dict)
        with atomic_path(directory / WEIGHTS_NAME) as tmp:
            save_file(tensors, str(tmp), metadata={"format": "pt", "model_type": self.config.model_type})
        atomic_write_text(directory / CONFIG_NAME, self.config.to_json_string(use_diff=False))
        logger.info("Saved %s (%d tensors) to %s", type(self).__name__, len(tensors), directory)
        return directory

    @classmethod
    def from_pretrained(
        cls, model_id_or_path: str | Path, *, revision: str | None = None, device: str | torch.device | None = None
    ):
        """Load a model saved with :meth:`save_pretrained` from a local folder or a Hub id."""
        folder = resolve(str(model_id_or_path), revision)
        weights = folder / WEIGHTS_NAME
        if not (folder / CONFIG_NAME).is_file() or not weights.is_file():
            raise FileNotFoundError(
                f"{folder} is not a saved {cls.__name__}: it needs {CONFIG_NAME} and {WEIGHTS_NAME} "
                "(write one with save_pretrained)"
            )
        config = cls.config_class.from_pretrained(folder)
        if config.model_type != cls.config_class.model_type:
            raise ValueError(
                f"{folder}/{CONFIG_NAME} has model_type {config.model_type!r}; {cls.__name__} needs "
                f"{cls.config_class.model_type!r}"
            )
        model = cls.from_config(config)
        model.load_persistent_state(load_file(str(weights)), source=str(weights))
        if device is not None:
            model.to(device)
        model.eval()
        return model

    def load_persistent_state(self, tensors: dict[str, torch.Tensor], *, source: str) -> None:
        """Load saved tensors; every tensor not in ``tensors`` must belong to a frozen pretrained part."""
        result = self.load_state_dict(tensors, strict=False)  # type: ignore[attr-defined]
        prefixes = tuple(self.frozen_prefixes())
        missing = [key for key in result.missing_keys if not key.startswith(prefixes)]
        if missing or result.unexpected_keys:
            raise ValueError(
                f"{source} does not match the model built from its config: missing {missing[:8]}"
                f"{' ...' if len(missing) > 8 else ''}, unexpected {result.unexpected_keys[:8]}"
            )

    def push_to_hub(
        self, repo_id: str, *, private: bool = False, token: str | None = None,
        commit_message: str = "Upload model trained with jepa-hf", license: str = "apache-2.0",
    ) -> str:
        """Save into a temporary folder with a generated model card and upload it (:mod:`jepa_core.hub`).

        Returns the commit URL. Frozen encoders are not uploaded: the card and config name them by id and revision.
        """
        from jepa_core.hub import push_folder
        from jepa_core.model_card import card_from_folder

        with tempfile.TemporaryDirectory() as tmp:
            self.save_pretrained(tmp)
            card = card_from_folder(tmp, kind="vljepa", repo_id=repo_id, license=license)
            return push_folder(tmp, repo_id, private=private, token=token, commit_message=commit_message, card=card)



# model_type -> "module:Class": a registry, not name sniffing. Strings, so that this low-level module does not
# import the models built on it (they import it); the class is imported when a folder of that type is loaded.
MODEL_CLASSES: dict[str, str] = {
    "vljepa": "vljepa.modeling:VLJEPAModel",
    "vljepa-dual-encoder": "vljepa.baseline:DualEncoderModel",
}


def model_classes() -> dict[str, type]:
    """``model_type`` -> model class, imported now."""
    import importlib

    classes = {}
    for model_type, target in MODEL_CLASSES.items():
        module_name, class_name = target.split(":")
        classes[model_type] = getattr(importlib.import_module(module_name), class_name)
    return classes


def load_pretrained(model_id_or_path: str | Path, *, revision: str | None = None, device: str | None = None):
    """A :class:`~vljepa.modeling.VLJEPAModel` or :class:`~vljepa.baseline.DualEncoderModel` from a folder or id."""
    folder = resolve(str(model_id_or_path), revision)
    config_file = folder / CONFIG_NAME
    if not config_file.is_file():
        raise FileNotFoundError(f"{folder} has no {CONFIG_NAME}: not a saved vljepa model")
    model_type = json.loads(config_file.read_text()).get("model_type")
    if model_type not in MODEL_CLASSES:
        raise ValueError(f"{config_file}: model_type {model_type!r} is not one of {sorted(MODEL_CLASSES)}")
    return model_classes()[model_type].from_pretrained(folder, device=device)
