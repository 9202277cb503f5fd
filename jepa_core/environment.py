"""What a run's numbers depend on besides the code and the config: installed packages, CPU / GPU, threads.

Two runs of the same commit and seed can differ on another machine or install (a different BLAS build, CPU
instruction set or thread count changes float summation order). ``run_info.json`` records
:func:`environment_info` so that such a difference can be explained; the full package list goes into
``packages.txt`` beside it (``name==version`` per line, sorted), identified in ``run_info.json`` by its sha256.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import platform
from pathlib import Path
from typing import Any

PACKAGES_FILE = "packages.txt"


def installed_packages() -> list[str]:
    """``name==version`` of every installed distribution, sorted case-insensitively, one per name."""
    versions: dict[str, str] = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            versions.setdefault(name.lower().replace("_", "-"), f"{name}=={dist.version}")
    return [versions[key] for key in sorted(versions)]


def cpu_model() -> str:
    """The CPU model name (``/proc/cpuinfo`` on Linux, else what ``platform`` reports)."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.lower().startswith(("model name", "hardware", "processor\t: ")) and ":" in line:
                value = line.split(":", 1)[1].strip()
                if value and not value.isdigit():
                    return value
    return platform.processor() or platform.machine() or "unknown"


def environment_info(run_dir: str | Path | None = None) -> dict[str, Any]:
    """Packages (sha256 of the list, and the list in ``run_dir/packages.txt`` when ``run_dir`` is given), CPU,
    GPUs and torch's thread counts, as a JSON-ready mapping."""
    import torch

    packages = installed_packages()
    text = "\n".join(packages) + "\n"
    info: dict[str, Any] = {
        "packages_sha256": hashlib.sha256(text.encode()).hexdigest(),
        "num_packages": len(packages),
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_num_threads": torch.get_num_threads(),
        "torch_num_interop_threads": torch.get_num_interop_threads(),
        "torch_cuda": torch.version.cuda,
        "gpus": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        if torch.cuda.is_available() else [],
    }
    if run_dir is not None:
        from jepa_core.atomic import atomic_write_text

        atomic_write_text(Path(run_dir) / PACKAGES_FILE, text)
        info["packages_file"] = PACKAGES_FILE
    return info
