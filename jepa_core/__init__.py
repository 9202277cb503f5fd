"""Shared helpers for `vljepa` and `llm_jepa`: model resolution, config parsing, run directories,
Hub publishing and the tiny-model test kit. Imported by both packages, never copied."""

from jepa_core.compat import ensure_torchvision_importable

ensure_torchvision_importable()

__version__ = "0.1.0"
