"""Publishing model folders to the Hugging Face Hub, and the loading-safety policy.

:func:`push_folder` checks a saved folder before anything leaves the machine: only safetensors weights
(a pickle file such as ``training_args.bin``, ``optimizer.pt`` or ``x.pth.tar`` is refused by name), a
``config.json`` or ``adapter_config.json``, and a ``README.md`` model card (written from card data when
missing). It uploads an allow-list (:func:`select_upload_files`): safetensors, JSON/YAML configs, tokenizer
files, Markdown (model card, eval report), ``predictions.jsonl``, PNG/SVG plots, and TensorBoard event files
only with ``include_logs``. Everything else (``.env``, ``.huggingface/token``, archives, ``run_info.json`` with
its host and command line, ...) stays on the machine and is named in the log. Authentication comes from
``HF_TOKEN`` or ``hf auth login`` (a ``token`` argument also works but is never written anywhere). Hub errors
come back as :class:`HubPublishError` saying what to do.

Example::

    >>> from jepa_core.hub import push_folder
    >>> url = push_folder("runs/easyvqa/final", "me/vljepa-easyvqa", private=True)  # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import dataclasses
import fnmatch
import glob
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from huggingface_hub import HfApi, ModelCard
from huggingface_hub.errors import (
    HfHubHTTPError,
    HFValidationError,
    LocalTokenNotFoundError,
    OfflineModeIsEnabled,
)
from huggingface_hub.utils import DEFAULT_IGNORE_PATTERNS, filter_repo_objects

from jepa_core.model_card import CardKind, ModelCardInfo, card_from_folder, render_model_card
from jepa_core.rundir import atomic_write_text, is_secret_name

logger = logging.getLogger(__name__)

# Formats that unpickle (run code) when loaded. Weights must be safetensors.
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".joblib")
# What a published model folder may hold, matched against each file's name (not its folder).
UPLOAD_ALLOW_PATTERNS = (
    "*.safetensors",  # weights (and *.safetensors.index.json below)
    "*.json", "*.yaml", "*.yml",  # model / adapter / generation / tokenizer configs, metrics.json
    "*.model", "*.tiktoken", "vocab.txt", "merges.txt", "*.jinja",  # sentencepiece, BPE files, chat templates
    "*.md", "LICENSE", "LICENSE.*", "NOTICE",  # model card, eval report.md
    "predictions.jsonl",  # eval predictions
    "*.png", "*.svg",  # plots
)
TENSORBOARD_PATTERNS = ("events.out.tfevents.*",)
# Records of the run itself (host, command line, environment): never published.
NEVER_UPLOAD = ("run_info.json",)
CONFIG_FILES = ("config.json", "adapter_config.json")
CARD_FILE = "README.md"
# Marker of huggingface_hub's default card template, which peft's save_pretrained fills with placeholders.
TEMPLATE_PLACEHOLDER = "[More Information Needed]"


class PublishError(ValueError):
    """A folder that must not or cannot be published as it is (pickle files, no config, bad card)."""


class HubPublishError(RuntimeError):
    """The Hub refused or could not be reached; the message names the repo and what to do."""


def safe_load_kwargs(trust_remote_code: bool = False) -> dict[str, Any]:
    """Keyword arguments for ``from_pretrained`` that never run pickled or remote code by default.

    ``use_safetensors=True`` makes transformers refuse ``*.bin`` weights; ``trust_remote_code`` stays False
    unless the user opts in (then a warning is logged, since the repo's Python code will run).
    """
    if trust_remote_code:
        logger.warning("trust_remote_code=True: Python code from the model repo will run on this machine")
    return {"use_safetensors": True, "trust_remote_code": trust_remote_code}


def is_pickle_name(name: str) -> bool:
    """True for a file whose name says it unpickles when loaded: ``optimizer.pt``, ``x.pth.tar``, ``y.pkl.gz``."""
    return any(suffix.lower() in PICKLE_SUFFIXES for suffix in Path(name).suffixes)


def _skip_reason(folder: Path, rel: str, include_logs: bool) -> str | None:
    """Why the allow-list keeps ``rel`` off the Hub, or None when it may be uploaded."""
    parts = rel.split("/")
    name = parts[-1]
    if any(part.startswith(".") for part in parts):
        return "hidden file or folder"
    if name in NEVER_UPLOAD:
        return "run record (host, command line)"
    stem = name.split(".")[0]
    if is_secret_name(stem) or stem.lower() in ("token", "env", "netrc", "id_rsa", "id_ed25519"):
        return "looks like a credential"
    path = folder / rel
    if path.is_symlink() and not path.resolve().is_relative_to(folder.resolve()):
        return "symbolic link to a file outside the folder"
    if any(fnmatch.fnmatch(name, pattern) for pattern in UPLOAD_ALLOW_PATTERNS):
        return None
    if any(fnmatch.fnmatch(name, pattern) for pattern in TENSORBOARD_PATTERNS):
        return None if include_logs else "TensorBoard log (pass include_logs / --include_logs to publish logs)"
    return "not a model, config, tokenizer, card, report or plot file"


def select_upload_files(
    folder: str | Path, *, allow_patterns: Any = None, ignore_patterns: Any = None, include_logs: bool = False
) -> tuple[list[str], dict[str, str]]:
    """The files of ``folder`` to upload (relative POSIX paths) and the skipped ones with the reason.

    ``allow_patterns`` / ``ignore_patterns`` (``upload_folder``'s, plus huggingface_hub's default ignores) narrow
    the candidates; the allow-list (:data:`UPLOAD_ALLOW_PATTERNS`) then decides. Pickle files are *not*
    handled here: :func:`prepare_folder` refuses them.
    """
    folder = Path(folder)
    selected, skipped = [], {}
    for rel in _candidate_files(folder, allow_patterns, ignore_patterns):
        reason = _skip_reason(folder, rel, include_logs)
        if reason is None:
            selected.append(rel)
        else:
            skipped[rel] = reason
    return selected, skipped


def _candidate_files(folder: Path, allow_patterns: Any, ignore_patterns: Any) -> list[str]:
    """Relative paths that ``upload_folder`` would consider with these patterns."""
    paths = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    ignore = [*(_as_list(ignore_patterns)), *DEFAULT_IGNORE_PATTERNS]
    return list(filter_repo_objects(paths, allow_patterns=allow_patterns, ignore_patterns=ignore))


def exact_patterns(files: Sequence[str]) -> list[str]:
    """``upload_folder`` allow patterns matching exactly these paths (wildcard characters escaped)."""
    return [glob.escape(f) for f in files]


def log_skipped(folder: str | Path, skipped: dict[str, str]) -> None:
    """Name every file left out of an upload, with the reason (the log is the user's record of it)."""
    for rel, reason in skipped.items():
        logger.info("Not uploading %s: %s", Path(folder) / rel, reason)
    if skipped:
        logger.warning("Left %d file(s) of %s out of the upload (listed above at INFO level): %s", len(skipped),
                       folder, ", ".join(list(skipped)[:10]) + (" ..." if len(skipped) > 10 else ""))


def _as_list(patterns: Any) -> list[str]:
    if patterns is None:
        return []
    return [patterns] if isinstance(patterns, str) else list(patterns)


def prepare_folder(
    folder: str | Path, *, card: ModelCardInfo | None = None, allow_patterns: Any = None, ignore_patterns: Any = None,
    include_logs: bool = False,
) -> list[str]:
    """Check ``folder`` for publishing and return the files to upload (the skipped ones are logged).

    With ``card``, ``README.md`` is (re)written from it; without, the folder must already have one.

    Raises:
        PublishError: naming the offending file and what to do.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise PublishError(f"cannot publish {folder}: not a directory")
    candidates = _candidate_files(folder, allow_patterns, ignore_patterns)
    pickles = [f for f in candidates if is_pickle_name(f) and not any(p.startswith(".") for p in f.split("/"))]
    if pickles:
        listed = ", ".join(pickles)
        raise PublishError(
            f"refusing to publish {folder}: pickle file(s) {listed} would be uploaded; loading them can run "
            "arbitrary code. Save weights with safetensors (save_pretrained does by default), delete these "
            f"files, or exclude them with ignore_patterns (CLI: --ignore_patterns {' '.join(pickles)})."
        )
    files, skipped = select_upload_files(
        folder, allow_patterns=allow_patterns, ignore_patterns=ignore_patterns, include_logs=include_logs
    )
    if not any(f.endswith(".safetensors") for f in files):
        raise PublishError(f"cannot publish {folder}: no *.safetensors weights among {files or 'no files'}")
    if not any(name in files for name in CONFIG_FILES):
        raise PublishError(
            f"cannot publish {folder}: no config.json or adapter_config.json at the top level, so "
            "from_pretrained could not load it; save the model with save_pretrained"
        )
    card_path = folder / CARD_FILE
    if card is not None:
        if card_path.is_file():
            logger.info("Replacing %s with a card rendered from the given card data", card_path)
        atomic_write_text(card_path, render_model_card(card))
        logger.info("Wrote model card %s", card_path)
        files, skipped = select_upload_files(
            folder, allow_patterns=allow_patterns, ignore_patterns=ignore_patterns, include_logs=include_logs
        )
    elif not card_path.is_file():
        raise PublishError(
            f"cannot publish {folder}: no {CARD_FILE} model card; pass card data (ModelCardInfo) or write "
            "one with jepa_core.model_card.render_model_card"
        )
    try:
        ModelCard(card_path.read_text())
    except (ValueError, yaml.YAMLError) as err:
        raise PublishError(f"{card_path}: invalid model card front matter: {err}") from err
    if CARD_FILE not in files:
        raise PublishError(f"cannot publish {folder}: {CARD_FILE} is excluded by allow/ignore patterns")
    log_skipped(folder, skipped)
    return files


def _explain(err: BaseException, repo_id: str) -> str:
    """What went wrong talking to the Hub about ``repo_id``, and what to do about it."""
    status = getattr(getattr(err, "response", None), "status_code", None)
    if isinstance(err, OfflineModeIsEnabled):
        return (f"cannot publish to {repo_id!r}: HF_HUB_OFFLINE is set. Unset it (export HF_HUB_OFFLINE=0) on a "
                "machine with network access and retry.")
    if isinstance(err, LocalTokenNotFoundError) or status in (401, 403):
        return (f"cannot publish to {repo_id!r}: not authenticated or not allowed to write there ({err}). "
                "Set HF_TOKEN to a token with write access or run `hf auth login`, and check that you own the "
                "namespace (user or organisation) in the repo id.")
    if isinstance(err, HFValidationError):
        return f"cannot publish to {repo_id!r}: invalid repo id ({err}); use 'user/name' or 'org/name'."
    if isinstance(err, HfHubHTTPError):
        return f"the Hub rejected the upload to {repo_id!r} (HTTP {status}): {err}"
    return (f"cannot reach the Hugging Face Hub to publish {repo_id!r} ({type(err).__name__}: {err}). Check "
            "the network connection (and HF_ENDPOINT if set), then retry.")


def push_folder(
    folder: str | Path,
    repo_id: str,
    *,
    private: bool = False,
    commit_message: str = "Upload model trained with jepa-hf",
    token: str | None = None,
    allow_patterns: list[str] | str | None = None,
    ignore_patterns: list[str] | str | None = None,
    card: ModelCardInfo | None = None,
    include_logs: bool = False,
) -> str:
    """Validate ``folder`` (see :func:`prepare_folder`), create ``repo_id`` and upload; return the commit URL.

    ``card``: card data to (re)write ``README.md`` from; None keeps the folder's own ``README.md``.
    ``include_logs``: also upload TensorBoard event files. ``token``: None uses ``HF_TOKEN`` / ``hf auth login``.
    Only the files :func:`prepare_folder` selects are uploaded (as exact allow patterns).
    """
    import httpx2  # huggingface_hub 2.x HTTP client; its connection errors are not OSErrors

    files = prepare_folder(folder, card=card, allow_patterns=allow_patterns, ignore_patterns=ignore_patterns,
                           include_logs=include_logs)
    logger.info("Publishing %d files from %s to %s (private=%s)", len(files), folder, repo_id, private)
    api = HfApi(token=token)
    try:
        repo = api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        commit = api.upload_folder(
            repo_id=repo.repo_id, folder_path=str(folder), repo_type="model", commit_message=commit_message,
            # exactly the selected files; copies: upload_folder appends its default ignore patterns to a list
            allow_patterns=exact_patterns(files), ignore_patterns=_as_list(ignore_patterns) or None,
        )
    except (OSError, httpx2.HTTPError, HFValidationError) as err:
        raise HubPublishError(_explain(err, repo_id)) from err
    logger.info("Published %s: %s", repo_id, commit.commit_url)
    return str(commit.commit_url)


@dataclass
class PushArguments:
    """Command line of ``vljepa push`` / ``llm-jepa push``."""

    folder: str = field(metadata={"help": "Saved model folder (save_pretrained output) to publish."})
    repo_id: str = field(metadata={"help": "Target Hub repo, 'user/name' or 'org/name'."})
    private: bool = field(default=False, metadata={"help": "Create the repo as private."})
    commit_message: str = field(
        default="Upload model trained with jepa-hf", metadata={"help": "Commit message on the Hub."}
    )
    allow_patterns: list[str] | None = field(default=None, metadata={"help": "Only upload files matching these."})
    ignore_patterns: list[str] | None = field(default=None, metadata={"help": "Never upload files matching these."})
    include_logs: bool = field(
        default=False, metadata={"help": "Also upload TensorBoard event files (events.out.tfevents.*)."}
    )
    model_card: Literal["auto", "keep", "generate"] = field(
        default="auto",
        metadata={"help": "README.md: 'generate' from the folder's configs, recipe and metrics; 'keep' the "
                          "folder's own; 'auto' generates when it is missing or an unfilled template (e.g. the "
                          "one peft's save_pretrained writes)."},
    )
    license: str = field(
        default="apache-2.0",
        metadata={"help": "License for a generated model card (check the base models' licenses)."},
    )

    def __post_init__(self) -> None:
        if "/" not in self.repo_id or self.repo_id.count("/") != 1 or not all(self.repo_id.split("/")):
            raise ValueError(f"--repo_id must be 'user/name' or 'org/name', got {self.repo_id!r}")
        if not Path(self.folder).is_dir():
            raise ValueError(f"folder {self.folder!r} does not exist or is not a directory")


def has_filled_card(folder: str | Path) -> bool:
    """True when ``folder/README.md`` exists and is not an unfilled template (no placeholder text)."""
    path = Path(folder) / CARD_FILE
    return path.is_file() and TEMPLATE_PLACEHOLDER not in path.read_text()


def push_parser(kind: CardKind) -> argparse.ArgumentParser:
    """``<kind> push DIR --repo_id ID [...]``, one option per :class:`PushArguments` field."""
    parser = argparse.ArgumentParser(prog=f"{kind} push", description="Publish a saved model folder to the Hub.")
    for f in dataclasses.fields(PushArguments):
        help_text = f.metadata["help"]
        if f.name == "folder":
            parser.add_argument("folder", help=help_text)
        elif f.type == "bool":
            parser.add_argument(f"--{f.name}", action="store_true", help=help_text)
        elif f.name == "model_card":
            parser.add_argument("--model_card", choices=["auto", "keep", "generate"], default=f.default,
                                help=help_text)
        elif f.name.endswith("_patterns"):
            parser.add_argument(f"--{f.name}", nargs="+", default=None, help=help_text)
        else:
            required = f.default is dataclasses.MISSING
            parser.add_argument(f"--{f.name}", required=required, default=None if required else f.default,
                                help=help_text)
    return parser


def push_main(argv: Sequence[str], *, kind: CardKind) -> int:
    """Entry point of ``vljepa push`` / ``llm-jepa push``; generates a card from the folder if it has none."""
    parser = push_parser(kind)
    namespace = parser.parse_args(list(argv))
    try:
        args = PushArguments(**vars(namespace))
    except ValueError as err:
        parser.error(str(err))
    folder = Path(args.folder)
    card = None
    if args.model_card == "generate" or (args.model_card == "auto" and not has_filled_card(folder)):
        card = card_from_folder(folder, kind=kind, repo_id=args.repo_id, license=args.license)
    try:
        url = push_folder(
            folder, args.repo_id, private=args.private, commit_message=args.commit_message,
            allow_patterns=args.allow_patterns, ignore_patterns=args.ignore_patterns, card=card,
            include_logs=args.include_logs,
        )
    except (PublishError, HubPublishError) as err:
        sys.stderr.write(f"{parser.prog}: error: {err}\n")
        return 1
    print(url)
    return 0
