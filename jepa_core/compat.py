"""Environment compatibility shims, applied explicitly and loudly.

torchvision on PyPI (Linux x86-64) is built against CUDA torch. Beside a CPU-only torch its
compiled ops (`torchvision._C`) cannot load; torchvision is designed to tolerate that
(`torchvision.extension._has_ops()` returns False) except that two fake-tensor registrations
(`torchvision::nms`, `torchvision::qnms`) run unguarded at import time and raise
``RuntimeError: operator torchvision::nms does not exist``. timm imports torchvision for pure-Python
pieces (FrozenBatchNorm2d, transforms), so timm, and transformers' ``TimmWrapperModel``, would be
unusable on CPU machines.

:func:`ensure_torchvision_importable` declares the two operator schemas (without kernels) so the
import completes. Calling ``torchvision.ops.nms`` then still raises torchvision's own "Couldn't load
custom C++ ops" error: nothing is silently replaced, and the library never uses those ops.
"""

from __future__ import annotations

import logging
import sys

logger = logging.getLogger(__name__)

_SCHEMA_LIBRARY = None  # keep a reference: the definitions are dropped if the Library is collected


def ensure_torchvision_importable() -> bool:
    """Import torchvision, working around missing compiled ops on CPU-only torch.

    Returns True when the workaround was needed. Raises whatever torchvision raises for any other
    failure (for example, torchvision not installed).
    """
    global _SCHEMA_LIBRARY
    if "torchvision" in sys.modules and getattr(sys.modules["torchvision"], "__version__", None):
        return _SCHEMA_LIBRARY is not None
    try:
        import torchvision  # noqa: F401

        return False
    except RuntimeError as err:
        if "torchvision::nms" not in str(err):
            raise
    import torch

    for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        del sys.modules[name]
    _SCHEMA_LIBRARY = torch.library.Library("torchvision", "DEF")
    _SCHEMA_LIBRARY.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _SCHEMA_LIBRARY.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    import torchvision  # noqa: F401,F811

    logger.warning(
        "torchvision %s cannot load its compiled ops beside torch %s (a CUDA torchvision wheel next to a "
        "CPU torch). Its pure-Python parts, which timm needs, are usable; torchvision.ops.nms and "
        "friends will raise if called.",
        torchvision.__version__,
        torch.__version__,
    )
    return True
