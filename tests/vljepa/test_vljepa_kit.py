"""Fixtures shared by the VL-JEPA tests (loaded by the other ``test_vljepa_*`` files through
``pytest_plugins``), and their checks.

``vl_tiny_st`` is the kit's tiny sentence-transformer with a working tokenizer: under transformers 5,
``BertTokenizerFast(vocab_file=...)`` ignores ``vocab_file`` and every word becomes ``[UNK]``, so all texts
embed identically (see the final report for the one-line kit fix). Once the kit is fixed this fixture
still works unchanged.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from jepa_core import testing as kit


def fixed_tiny_sentence_transformer(root: Path) -> Path:
    from transformers import BertTokenizerFast

    path = root / "tiny-sentence-transformer-fixed-tokenizer"
    if (path / "modules.json").exists():
        return path
    source = kit.tiny_sentence_transformer(root)
    building = root / ".building-fixed-st"
    shutil.rmtree(building, ignore_errors=True)
    shutil.copytree(source, building)
    vocab = (root / "tiny-bert" / "vocab.txt").read_text().splitlines()
    tokenizer = BertTokenizerFast(vocab={token: i for i, token in enumerate(vocab)}, do_lower_case=True,
                                  model_max_length=64)
    tokenizer.save_pretrained(building)
    building.rename(path)
    return path


@pytest.fixture
def one_torch_thread():
    """Tiny models run thousands of microsecond-sized ops; on a shared 2-core machine two OpenMP threads made
    each one ~50x slower (spin-waiting for a descheduled thread), so these tests use one thread."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def vl_tiny_st(kit_dir) -> Path:
    return fixed_tiny_sentence_transformer(Path(kit_dir))


def tiny_config(vision: Path, llm: Path, st: Path, **overrides):
    from vljepa.configuration import VLJEPAConfig

    values = {
        "x_encoder_id": str(vision), "predictor_model_id": str(llm), "y_encoder_id": str(st),
        "predictor_num_layers": 2, "embedding_dim": 16,
    }
    values.update(overrides)
    return VLJEPAConfig(**values)


@pytest.fixture
def tiny_model(tiny_clip, tiny_llama3, vl_tiny_st):
    from vljepa.modeling import VLJEPAModel

    torch.manual_seed(0)
    return VLJEPAModel.from_config(tiny_config(tiny_clip, tiny_llama3, vl_tiny_st))


@pytest.mark.usefixtures("one_torch_thread")
def test_fixed_tiny_sentence_transformer_tells_texts_apart(vl_tiny_st):
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(vl_tiny_st), device="cpu")
    emb = model.encode(["red", "blue", "a red circle"], convert_to_tensor=True)
    similarity = emb @ emb.T
    assert similarity[0, 1] < 0.999 and similarity[0, 2] < 0.999
