"""Make torchvision importable beside a CPU-only torch, before anything imports it.

PyPI's Linux torchvision wheels are CUDA builds: beside a CPU torch their compiled ops
(``torchvision._C``) cannot load. torchvision tolerates that by design (``extension._has_ops()`` is
False) except for two fake-tensor registrations (``torchvision::nms``, ``torchvision::qnms``) that run
unguarded at import time and raise ``RuntimeError: operator torchvision::nms does not exist``. timm
imports torchvision, and so do ``accelerate``'s CLI (through timm) and transformers' timm wrapper.

:func:`declare_missing_ops` loads the compiled ops when it can; when it cannot, it declares the two
operator schemas (no kernels), so the import completes and calling those ops still raises torchvision's
own "Couldn't load custom C++ ops" error. Nothing is replaced silently.

This module is deliberately standalone (stdlib + torch only, imported lazily): ``make install`` adds a
``.pth`` file that calls :func:`install_import_hook` at interpreter start-up, which costs nothing until
``torchvision`` is first imported (probing whether it is installed costs nothing either), so
``accelerate launch`` and plain scripts work too.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys
import warnings
from pathlib import Path

_LIBRARY = None  # the torch.library.Library holding the schemas; dropped definitions if collected


def declare_missing_ops() -> bool:
    """Load torchvision's compiled ops, or declare the schemas its import needs. True if declared."""
    global _LIBRARY
    if _LIBRARY is not None:
        return True
    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        return False
    import torch  # importing torch can itself import torchvision (and re-enter here): check again below

    if _LIBRARY is not None or hasattr(torch.ops.torchvision, "nms"):
        return _LIBRARY is not None
    libraries = sorted(Path(next(iter(spec.submodule_search_locations))).glob("_C*.so"))
    try:
        if not libraries:
            raise OSError("no torchvision/_C library")
        torch.ops.load_library(str(libraries[0]))
        return False
    except (OSError, RuntimeError):
        pass
    _LIBRARY = torch.library.Library("torchvision", "FRAGMENT")
    _LIBRARY.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _LIBRARY.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    warnings.warn(
        f"torchvision cannot load its compiled ops beside torch {torch.__version__} (a CUDA torchvision "
        "wheel next to a CPU torch); its pure-Python parts, which timm needs, work; torchvision.ops.nms "
        "and friends raise if called.",
        RuntimeWarning,
        stacklevel=3,
    )
    return True


class _DeclareFirstLoader(importlib.abc.Loader):
    """Wraps torchvision's own loader: declares the schemas just before torchvision's code runs."""

    def __init__(self, loader) -> None:
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:
        sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _TorchvisionFinder)]
        declare_missing_ops()
        self._loader.exec_module(module)

    def __getattr__(self, name):  # resource readers, get_source, ...: torchvision's own loader answers
        return getattr(self._loader, name)


class _TorchvisionFinder(importlib.abc.MetaPathFinder):
    """Runs :func:`declare_missing_ops` once, just before ``torchvision`` is first executed.

    Only the import itself pays: an availability probe (``importlib.util.find_spec("torchvision")``, which
    transformers makes on import) gets torchvision's spec with a wrapped loader and imports nothing.
    """

    def find_spec(self, name, path=None, target=None):
        if name != "torchvision":
            return None
        for finder in sys.meta_path:
            if isinstance(finder, _TorchvisionFinder) or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                if spec.loader is not None and not isinstance(spec.loader, _DeclareFirstLoader):
                    spec.loader = _DeclareFirstLoader(spec.loader)
                return spec
        return None  # not installed: the regular finders report it as usual


def install_import_hook() -> None:
    """Arrange for :func:`declare_missing_ops` to run before the first ``import torchvision``."""
    if "torchvision" in sys.modules or any(isinstance(f, _TorchvisionFinder) for f in sys.meta_path):
        return
    sys.meta_path.insert(0, _TorchvisionFinder())
