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


# Keyword arguments AutoModel.from_pretrained passes on that do not apply to these models (no remote code, no
# adapters, no proxies of our own: huggingface_hub reads its proxy settings from the environment).
_IGNORED_AUTO_KWARGS = frozenset({"_from_auto", "trust_remote_code", "adapter_kwargs", "proxies", "code_revision"})


def resolve_saved_folder(
    model_id_or_path: str | Path, *, revision: str | None = None, token: str | bool | None = None,
    cache_dir: str | Path | None = None, force_download: bool = False, local_files_only: bool = False,
    subfolder: str = "",
) -> Path:
    """The local folder of a saved model: a local folder as is, a Hub id through the resolver.

    With any of ``token``, ``cache_dir``, ``force_download`` or ``local_files_only`` set, a Hub id is fetched with
    ``huggingface_hub.snapshot_download`` and those arguments (the resolver's bundled-model fallback does not
    apply to saved VL-JEPA models anyway).
    """
    local = Path(model_id_or_path).expanduser()
    if local.is_dir():
        folder = local
    elif token is not None or cache_dir is not None or force_download or local_files_only:
        import huggingface_hub

        folder = Path(huggingface_hub.snapshot_download(
            str(model_id_or_path), revision=revision, token=token, cache_dir=cache_dir,
            force_download=force_download, local_files_only=local_files_only,
        ))
    else:
        folder = resolve(str(model_id_or_path), revision)
    if subfolder:
        folder = folder / subfolder
        if not folder.is_dir():
            raise FileNotFoundError(f"subfolder {subfolder!r} not found in {model_id_or_path}")
    return folder


def _target_dtype(value: str | torch.dtype | None, tensors: dict[str, torch.Tensor]) -> torch.dtype | None:
    """The dtype to cast a loaded model to: None (leave it), "auto" (the saved tensors' floating dtype)."""
    if value is None:
        return None
    if value == "auto":
        saved = {t.dtype for t in tensors.values() if t.is_floating_point()}
        return saved.pop() if len(saved) == 1 else None
    if isinstance(value, str):
        resolved = getattr(torch, value, None)
        if not isinstance(resolved, torch.dtype):
            raise TypeError(f"dtype {value!r} is not a torch dtype (e.g. 'float32', 'bfloat16', torch.float16)")
        return resolved
    return value


def _target_device(value: str | int | torch.device | dict | None) -> torch.device | None:
    """One device for the whole model from a ``device_map`` (or the older ``device``) argument."""
    if value is None:
        return None
    if isinstance(value, dict):
        devices = set(value.values())
        if len(devices) != 1:
            raise ValueError(
                f"device_map={value!r} splits the model across devices; VL-JEPA models load onto one device: pass "
                "device_map='cuda:0' (or 'cpu', 'auto')"
            )
        value = devices.pop()
    if value == "auto":
        return torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    if isinstance(value, int):
        return torch.device("cuda", value)
    return torch.device(value)


# Config fields that say what a trained tensor means: ``init_from`` copies tensors only between models that agree on
# them. The query context, the frozen flags and the loss settings may change between the stages of a curriculum.
INIT_FROM_MUST_MATCH = (
    "model_type", "x_encoder_id", "x_encoder_revision", "x_encoder_processor_overrides", "x_encoder_token_selection",
    "x_encoder_pooled_grid_size", "x_encoder_feature_layer", "predictor_type", "predictor_model_id",
    "predictor_revision", "predictor_num_layers", "predictor_first_layer", "visual_projection", "y_encoder_id",
    "y_encoder_revision", "embedding_dim",
)


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
        cls,
        pretrained_model_name_or_path: str | Path,
        *model_args: Any,
        config: PreTrainedConfig | None = None,
        revision: str | None = None,
        token: str | bool | None = None,
        cache_dir: str | Path | None = None,
        force_download: bool = False,
        local_files_only: bool = False,
        subfolder: str = "",
        dtype: str | torch.dtype | None = None,
        torch_dtype: str | torch.dtype | None = None,
        device_map: str | int | torch.device | None = None,
        device: str | torch.device | None = None,
        **kwargs: Any,
    ):
        """Load a model saved with :meth:`save_pretrained` from a local folder or a Hub id.

        Takes the keyword arguments of ``transformers``' ``from_pretrained`` that apply to these models, so
        ``AutoModel.from_pretrained(folder)`` (after :func:`vljepa.register_auto_classes`) calls it unchanged:

        * ``revision``, ``token``, ``cache_dir``, ``force_download``, ``local_files_only``, ``subfolder``: where
          the folder comes from (``huggingface_hub.snapshot_download`` for a Hub id).
        * ``config``: a config object to use instead of the folder's ``config.json``.
        * ``dtype`` (``torch_dtype`` is the older spelling): cast the loaded model, e.g. ``torch.bfloat16``;
          ``"auto"`` keeps the dtype of the saved tensors.
        * ``device_map``: one device for the whole model (``"cpu"``, ``"cuda:0"``, ``0``, or ``"auto"`` = the
          first GPU when there is one). Splitting these models across devices is not supported. ``device`` is
          this package's older name for it.

        The frozen encoders are rebuilt from the hub id and revision recorded in the config (their own
        downloads use the standard Hugging Face cache and login).
        """
        if model_args:
            raise TypeError(f"{cls.__name__}.from_pretrained takes no extra positional arguments, got {model_args!r}")
        unknown = sorted(set(kwargs) - _IGNORED_AUTO_KWARGS)
        if unknown:
            raise TypeError(f"{cls.__name__}.from_pretrained got unexpected keyword argument(s): {', '.join(unknown)}")
        if dtype is not None and torch_dtype is not None and dtype != torch_dtype:
            raise ValueError(f"dtype={dtype!r} and torch_dtype={torch_dtype!r} disagree; pass only dtype")
        folder = resolve_saved_folder(
            pretrained_model_name_or_path, revision=revision, token=token, cache_dir=cache_dir,
            force_download=force_download, local_files_only=local_files_only, subfolder=subfolder,
        )
        weights = folder / WEIGHTS_NAME
        if not (folder / CONFIG_NAME).is_file() or not weights.is_file():
            raise FileNotFoundError(
                f"{folder} is not a saved {cls.__name__}: it needs {CONFIG_NAME} and {WEIGHTS_NAME} "
                "(write one with save_pretrained)"
            )
        if config is None:
            config = cls.config_class.from_pretrained(folder)
        if config.model_type != cls.config_class.model_type:
            raise ValueError(
                f"{folder}/{CONFIG_NAME} has model_type {config.model_type!r}; {cls.__name__} needs "
                f"{cls.config_class.model_type!r}"
            )
        model = cls.from_config(config)
        tensors = load_file(str(weights))
        model.load_persistent_state(tensors, source=str(weights))
        model.load_extras(folder)
        target_dtype = _target_dtype(dtype if dtype is not None else torch_dtype, tensors)
        if target_dtype is not None:
            model.to(target_dtype)
        target_device = _target_device(device_map if device_map is not None else device)
        if target_device is not None:
            model.to(target_device)
        model.eval()
        return model

    def load_extras(self, folder: Path) -> None:
        """Load what a subclass keeps beside the weights (VL-JEPA: an attached ``decoder/``). Default: nothing."""

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

    def load_initial_weights(self, source: str | Path) -> list[str]:
        """Start from what another run trained: copy a saved model's trained tensors into this one (``init_from``).

        For curricula: a run continues an earlier run's model under another recipe. The saved model must agree with
        this one on :data:`INIT_FROM_MUST_MATCH` (kind, encoders, predictor layers, projections), and each of its
        tensors must exist here with the same shape. Tensors this model has and the saved one lacks (e.g. the query-context
        projection a new recipe adds) keep their fresh initialisation; their names are returned and logged.
        """
        local = Path(source).expanduser()
        if not local.exists() and (str(source).startswith((".", "/", "~")) or str(source).count("/") > 1):
            raise FileNotFoundError(f"init_from {source!r}: no such folder. It names the model/ folder of an earlier "
                                    "run: train that run first (a curriculum recipe's header says which)")
        folder = resolve_saved_folder(source)
        config_file, weights = folder / CONFIG_NAME, folder / WEIGHTS_NAME
        if not (config_file.is_file() and weights.is_file()):
            raise FileNotFoundError(f"init_from {source!r}: {folder} has no {CONFIG_NAME} and {WEIGHTS_NAME}; "
                                    "give the model/ folder of a finished vljepa run")
        saved = json.loads(config_file.read_text())
        ours = self.config.to_dict()
        differ = [f"{key}: saved {saved.get(key)!r}, recipe {ours.get(key)!r}" for key in INIT_FROM_MUST_MATCH
                  if saved.get(key) != ours.get(key)]
        if differ:
            raise ValueError(f"init_from {source!r} was trained with other encoders, predictor layers or widths than "
                             f"this recipe's ({'; '.join(differ)}): its tensors would mean something else here")
        tensors = load_file(str(weights))
        own = self.state_dict()  # type: ignore[attr-defined]
        unknown = [key for key in tensors if key not in own]
        reshaped = [f"{key} {tuple(tensors[key].shape)} -> {tuple(own[key].shape)}"
                    for key in tensors if key in own and tensors[key].shape != own[key].shape]
        if unknown or reshaped:
            raise ValueError(f"init_from {source!r} does not fit this recipe's model: tensors it lacks {unknown[:8]}, "
                             f"other shapes {reshaped[:8]}; the predictor layers, widths and projections must match")
        self.load_state_dict(tensors, strict=False)  # type: ignore[attr-defined]
        prefixes = tuple(self.frozen_prefixes())
        fresh = [key for key in own if key not in tensors and not key.startswith(prefixes)]
        logger.info("Initialised from %s: %d tensors copied; kept their fresh initialisation: %s", folder,
                    len(tensors), ", ".join(fresh) or "none")
        return fresh

    def push_to_hub(
        self, repo_id: str, *, private: bool = False, token: str | None = None,
        commit_message: str = "Upload model trained with jepa-hf", license: str | None = None,
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


def load_pretrained(model_id_or_path: str | Path, *, revision: str | None = None, **kwargs: Any):
    """A :class:`~vljepa.modeling.VLJEPAModel` or :class:`~vljepa.baseline.DualEncoderModel` from a folder or id.

    ``kwargs`` are those of :meth:`PersistenceMixin.from_pretrained` (token, cache_dir, dtype, device_map, ...).
    """
    hub_kwargs = {k: kwargs[k] for k in ("token", "cache_dir", "force_download", "local_files_only", "subfolder")
                  if k in kwargs}
    folder = resolve_saved_folder(model_id_or_path, revision=revision, **hub_kwargs)
    kwargs = {k: v for k, v in kwargs.items() if k not in hub_kwargs}
    config_file = folder / CONFIG_NAME
    if not config_file.is_file():
        raise FileNotFoundError(f"{folder} has no {CONFIG_NAME}: not a saved vljepa model")
    model_type = json.loads(config_file.read_text()).get("model_type")
    if model_type not in MODEL_CLASSES:
        raise ValueError(f"{config_file}: model_type {model_type!r} is not one of {sorted(MODEL_CLASSES)}")
    return model_classes()[model_type].from_pretrained(folder, **kwargs)


# ----------------------------------------------------------------------------------------------------------
# transformers' Auto classes. The models are torch.nn.Module subclasses with their own from_pretrained (frozen
# encoders stay out of the saved weights and are rebuilt from the hub ids in the config), not PreTrainedModel:
# AutoModel only needs the registered class to answer from_pretrained(path, config=..., **hub_kwargs), which
# PersistenceMixin.from_pretrained does. What PreTrainedModel adds (device_map splitting, quantisation,
# trust_remote_code) does not apply. `import vljepa` alone registers nothing: it imports neither torch nor
# transformers, so that the command line answers --help at once.


def register_auto_class(config_class: type, model_class: type) -> None:
    """Register ``config_class`` (by its ``model_type``) with AutoConfig and ``model_class`` with AutoModel."""
    from transformers import AutoConfig, AutoModel

    AutoConfig.register(config_class.model_type, config_class, exist_ok=True)
    AutoModel.register(config_class, model_class, exist_ok=True)


def register_auto_classes() -> None:
    """Make ``AutoConfig`` / ``AutoModel.from_pretrained`` load saved VL-JEPA and dual-encoder folders.

    Importing :mod:`vljepa.modeling` or :mod:`vljepa.baseline` (``from vljepa import VLJEPAModel``) registers its
    class too; this imports both.

        >>> import vljepa
        >>> vljepa.register_auto_classes()
        >>> from transformers import AutoModel
        >>> model = AutoModel.from_pretrained("runs/demo/vljepa/model", dtype="auto")   # doctest: +SKIP
    """
    model_classes()  # each model module registers its class when imported
