"""A fake Hugging Face Hub for offline tests: intercepts ``HfApi.create_repo`` / ``HfApi.upload_folder`` and,
for loading back, ``huggingface_hub.snapshot_download``; a repo is a folder under ``root``."""

from __future__ import annotations

import shutil
from concurrent.futures import Future
from pathlib import Path

import pytest
from huggingface_hub import CommitInfo, HfApi, RepoUrl
from huggingface_hub.utils import DEFAULT_IGNORE_PATTERNS, filter_repo_objects


class FakeHub:
    """Stands in for the Hub at the HfApi boundary: a repo is a folder under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.created: list[dict] = []
        self.uploads: list[dict] = []
        self.tokens: list[str | None] = []  # the token each call authenticated with (None: HF_TOKEN / login)

    def create_repo(self, api, repo_id, *, private=None, exist_ok=False, repo_type=None, **kwargs):
        self.created.append({"repo_id": repo_id, "private": private, "exist_ok": exist_ok, "repo_type": repo_type})
        self.tokens.append(kwargs.get("token") or api.token)
        (self.root / repo_id).mkdir(parents=True, exist_ok=exist_ok)
        return RepoUrl(f"https://huggingface.co/{repo_id}")

    def upload_folder(self, api, *, repo_id, folder_path, repo_type=None, commit_message=None,
                      allow_patterns=None, ignore_patterns=None, run_as_future=False, **kwargs):
        self.uploads.append({"repo_id": repo_id, "commit_message": commit_message, "repo_type": repo_type})
        self.tokens.append(kwargs.get("token") or api.token)
        folder = Path(folder_path)
        paths = [p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()]
        ignore = [*(ignore_patterns or []), *DEFAULT_IGNORE_PATTERNS]
        for rel in filter_repo_objects(paths, allow_patterns=allow_patterns, ignore_patterns=ignore):
            target = self.root / repo_id / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(folder / rel, target)
        info = CommitInfo(commit_url=f"https://huggingface.co/{repo_id}/commit/0123abcd",
                          commit_message=commit_message, commit_description="", oid="0123abcd")
        if not run_as_future:
            return info
        future: Future = Future()
        future.set_result(info)
        return future

    def files(self, repo_id: str) -> set[str]:
        return {p.relative_to(self.root / repo_id).as_posix() for p in (self.root / repo_id).rglob("*")
                if p.is_file()}


def install_fake_hub(monkeypatch: pytest.MonkeyPatch, root: Path) -> FakeHub:
    """Route uploads through ``HfApi`` into a :class:`FakeHub` under ``root``."""
    fake = FakeHub(root)
    monkeypatch.setattr(HfApi, "create_repo", lambda api, *a, **k: fake.create_repo(api, *a, **k))
    monkeypatch.setattr(HfApi, "upload_folder", lambda api, *a, **k: fake.upload_folder(api, *a, **k))
    return fake


def serve_downloads(monkeypatch: pytest.MonkeyPatch, fake: FakeHub) -> list[str]:
    """Online mode whose ``snapshot_download`` returns the fake remote folder; returns the ids downloaded."""
    import huggingface_hub

    downloaded: list[str] = []

    def snapshot_download(repo_id, *, revision=None, local_files_only=False, **kwargs):
        folder = fake.root / repo_id
        if not folder.is_dir():
            raise huggingface_hub.errors.LocalEntryNotFoundError(f"{repo_id} is not on the fake hub")
        downloaded.append(repo_id)
        return str(folder)

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    return downloaded


def files_containing(root: Path, *needles: str) -> list[str]:
    """Every file under ``root`` whose bytes contain one of ``needles`` (binary files included): where a
    secret leaked to."""
    return sorted(
        path.relative_to(root).as_posix() for path in Path(root).rglob("*")
        if path.is_file() and any(needle.encode() in path.read_bytes() for needle in needles)
    )
