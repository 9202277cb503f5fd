"""Shared helpers for `vljepa` and `llm_jepa`: model resolution, config parsing, run directories,
Hub publishing and the tiny-model test kit. Imported by both packages, never copied.

Importing this package defines names only: it imports neither torch nor torchvision. The torchvision
workaround (:func:`jepa_core.compat.ensure_torchvision_importable`) is called by the code that loads
vision backbones, just before it needs torchvision.
"""

__version__ = "0.1.0"
