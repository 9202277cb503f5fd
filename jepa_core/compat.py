"""Environment compatibility shims, applied explicitly and loudly.

See :mod:`jepa_torchvision_compat`: torchvision's PyPI wheels cannot load their compiled ops beside a
CPU-only torch, and two unguarded registrations then break ``import torchvision`` (and so timm,
transformers' ``TimmWrapperModel`` and ``accelerate``'s CLI). ``make install`` installs a start-up hook;
:func:`ensure_torchvision_importable` covers environments installed without it.
"""

from __future__ import annotations

import sys

from jepa_torchvision_compat import declare_missing_ops


def ensure_torchvision_importable() -> bool:
    """Import torchvision, declaring its missing op schemas first when needed.

    Returns True when the schemas had to be declared. If torchvision is not installed this does nothing
    (the code that needs it raises the usual ImportError).
    """
    if "torchvision" in sys.modules:
        return False
    declared = declare_missing_ops()
    try:
        import torchvision  # noqa: F401
    except ImportError:
        pass  # not installed: code that needs it raises the usual ImportError itself
    return declared
