"""jepa_core.atomic: files get the umask's mode (not mkstemp's 0600), and a failed write leaves the old file."""

from __future__ import annotations

import errno
import os
import stat

import pytest
import torch
from safetensors.torch import save_file

from jepa_core.atomic import atomic_path, atomic_write_bytes, atomic_write_text


@pytest.fixture
def umask():
    previous = os.umask(0o022)

    def set_mask(mask: int) -> None:
        os.umask(mask)

    yield set_mask
    os.umask(previous)


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_files_get_the_umask_mode(tmp_path, umask, mask, mode):
    umask(mask)
    atomic_write_text(tmp_path / "a.json", "{}")
    atomic_write_bytes(tmp_path / "b.bin", b"x")
    with atomic_path(tmp_path / "model.safetensors") as tmp:
        save_file({"w": torch.zeros(2)}, str(tmp))
    plain = tmp_path / "plain.txt"
    plain.write_text("like any other tool")
    for name in ("a.json", "b.bin", "model.safetensors", "plain.txt"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == mode, name


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "model.safetensors"
    target.write_bytes(b"good")
    with pytest.raises(OSError), atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")
    assert target.read_bytes() == b"good"
    assert [p.name for p in tmp_path.iterdir()] == ["model.safetensors"]
