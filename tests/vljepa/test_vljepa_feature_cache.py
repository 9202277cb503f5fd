"""Feature cache: computed once, read back by later runs, keyed by encoder + preprocessing + image content."""

from __future__ import annotations

import io

import pytest
import torch
from PIL import Image

from vljepa.encoders.x_encoder import XEncoder
from vljepa.training.feature_cache import FeatureCache, image_content_hash

pytest_plugins = ["test_vljepa_kit"]  # shared fixtures: vl_tiny_st, tiny_model, one_torch_thread
pytestmark = pytest.mark.usefixtures("one_torch_thread")

class CountingEncoder:
    """Wraps an XEncoder and counts the images that reach the backbone."""

    def __init__(self, encoder: XEncoder) -> None:
        self.encoder = encoder
        self.images_encoded = 0

    def preprocess(self, images):
        self.images_encoded += len(images)
        return self.encoder.preprocess(images)

    def tokens_from_pixels(self, pixels):
        return self.encoder.tokens_from_pixels(pixels)


@pytest.fixture(scope="module")
def encoder(tiny_timm):
    return XEncoder(model_path=tiny_timm)


def coloured(n: int, offset: int = 0) -> list[Image.Image]:
    return [Image.new("RGB", (32, 32), (10 * (i + offset), 200, 30)) for i in range(n)]


def make_cache(root, encoder: XEncoder, dtype: str = "float32") -> FeatureCache:
    return FeatureCache.for_encoder(root, encoder, encoder_id="tiny", revision="r1", storage_dtype=dtype)


def test_features_are_computed_once_and_reused_by_a_later_run(tmp_path, encoder):
    counting = CountingEncoder(encoder)
    images = coloured(5)
    cache = make_cache(tmp_path, encoder)
    first = cache.get_or_compute(images + images[:2], counting)  # duplicates are encoded once
    assert counting.images_encoded == 5
    cache.flush()
    direct = encoder.tokens_from_pixels(encoder.preprocess(images))
    assert torch.allclose(first[:5], direct, atol=1e-6) and torch.equal(first[5:], first[:2])
    later_run = make_cache(tmp_path, encoder)  # a new process: reads the shards from disk
    assert len(later_run) == 5
    again = later_run.get_or_compute(images, counting)
    assert counting.images_encoded == 5 and torch.equal(again, first[:5])
    later_run.get_or_compute(coloured(2, offset=10), counting)
    assert counting.images_encoded == 7


def test_float16_storage_is_close(tmp_path, encoder):
    images = coloured(3)
    cached = make_cache(tmp_path, encoder, "float16").get_or_compute(images, encoder)
    direct = encoder.tokens_from_pixels(encoder.preprocess(images))
    assert cached.dtype == torch.float32
    assert torch.allclose(cached, direct, rtol=1e-2, atol=1e-3)


def test_key_separates_encoders_revisions_and_preprocessing(tmp_path, encoder, tiny_timm):
    base = make_cache(tmp_path, encoder).directory
    other_revision = FeatureCache.for_encoder(tmp_path, encoder, encoder_id="tiny", revision="r2").directory
    resized = XEncoder(model_path=tiny_timm, processor_overrides={"pretrained_cfg": {"input_size": [3, 16, 16]}})
    other_size = make_cache(tmp_path, resized).directory
    pooled = make_cache(tmp_path, XEncoder(model_path=tiny_timm, pooled_grid_size=1)).directory
    assert len({base, other_revision, other_size, pooled}) == 4
    assert resized.preprocess(coloured(1)).shape[-1] == 16


def test_unknown_processor_override_is_an_error(tiny_timm):
    with pytest.raises(ValueError, match="not in the image-processor config"):
        XEncoder(model_path=tiny_timm, processor_overrides={"no_such_key": 1})


def test_content_hash_depends_on_pixels_not_on_the_file():
    image = coloured(1)[0]
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    reopened = Image.open(io.BytesIO(buffer.getvalue()))
    assert image_content_hash(reopened) == image_content_hash(image)
    assert image_content_hash(coloured(1, offset=1)[0]) != image_content_hash(image)


def test_interrupted_shard_writes_leave_nothing_readable(tmp_path, encoder):
    cache = make_cache(tmp_path, encoder)
    (cache.directory / ".shard-123.safetensors.abc.tmp").write_bytes(b"partial")
    cache.get_or_compute(coloured(2), encoder)
    cache.flush()
    reopened = make_cache(tmp_path, encoder)
    assert len(reopened) == 2
    with pytest.raises(KeyError, match="not in the feature cache"):
        reopened.get([image_content_hash(coloured(1, offset=5)[0])])


def test_attached_cache_serves_the_model_path(tmp_path, encoder):
    encoder.feature_cache = make_cache(tmp_path, encoder)
    try:
        images = coloured(3)
        tokens, mask = encoder.encode(images)
        assert len(encoder.feature_cache) == 3 and mask.all()
        assert torch.allclose(tokens, encoder.tokens_from_pixels(encoder.preprocess(images)), atol=1e-6)
    finally:
        encoder.feature_cache = None


def test_model_reads_x_features_through_the_cache_it_is_given(tmp_path, tiny_model):
    """The trainer and `vljepa eval` hand the cache to the model (attach_feature_cache); its inference API
    then reads frozen features through it, and a trainable X-encoder refuses one."""
    cache = make_cache(tmp_path, tiny_model.x_encoder)
    before = tiny_model.embed_images(coloured(2))
    tiny_model.attach_feature_cache(cache)
    try:
        assert tiny_model.feature_cache is cache
        cached = tiny_model.embed_images(coloured(2))
        assert len(cache) == 2
        torch.testing.assert_close(cached, before, rtol=1e-5, atol=1e-5)
    finally:
        tiny_model.attach_feature_cache(None)
    assert tiny_model.feature_cache is None
    tiny_model.x_encoder.frozen = False
    try:
        with pytest.raises(ValueError, match="needs a frozen X-encoder"):
            tiny_model.attach_feature_cache(cache)
    finally:
        tiny_model.x_encoder.frozen = True
