"""Shared fixtures: tiny random HF models (built once per session) and offline defaults."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from jepa_core import testing as kit


@pytest.fixture(scope="session")
def kit_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("tiny-models")


@pytest.fixture(scope="session", params=["clip", "siglip", "dinov2", "timm"])
def tiny_vision(request, kit_dir):
    """Path to a tiny vision backbone; parametrised over the four supported families."""
    return kit.tiny_vision_model(kit_dir, request.param)


@pytest.fixture(scope="session")
def tiny_clip(kit_dir):
    return kit.tiny_vision_model(kit_dir, "clip")


@pytest.fixture(scope="session")
def tiny_timm(kit_dir):
    return kit.tiny_vision_model(kit_dir, "timm")


@pytest.fixture(scope="session")
def tiny_st(kit_dir):
    """Path to a tiny sentence-transformers model (BERT, mean pooling, normalised)."""
    return kit.tiny_sentence_transformer(kit_dir)


@pytest.fixture(scope="session", params=["llama3", "chatml"])
def tiny_llm(request, kit_dir):
    """Path to a tiny LlamaForCausalLM + tokenizer; parametrised over two chat templates."""
    return kit.tiny_llama(kit_dir, request.param)


@pytest.fixture(scope="session")
def tiny_llama3(kit_dir):
    return kit.tiny_llama(kit_dir, "llama3")
