"""A Y-decoder attached to a VLJEPAModel: text on demand through the model, saved and loaded with it,
and reachable from the `vljepa` command line."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image

from vljepa.decoding.decoder import YDecoder, YDecoderConfig
from vljepa.decoding.training import DecoderTrainingArguments, train_decoder

pytest_plugins = ["test_vljepa_kit"]  # tiny_model, one_torch_thread
pytestmark = pytest.mark.usefixtures("one_torch_thread")

CAPTIONS = ["a red square", "a blue circle"]
COLOURS = [(230, 20, 20), (20, 20, 230)]


def frames() -> list[Image.Image]:
    return [Image.new("RGB", (32, 32), colour) for colour in COLOURS]


def fitted_decoder(model, tmp_path, *, embedding_dim: int = 16) -> YDecoder:
    """A scratch decoder trained to reconstruct CAPTIONS from the model's own predictions of the two frames."""
    torch.manual_seed(0)
    config = YDecoderConfig(
        embedding_dim=embedding_dim, num_prefix_tokens=2, projection_hidden_dim=32, scratch_hidden_size=16,
        scratch_num_heads=2, scratch_intermediate_size=32, scratch_vocab_size=300, max_caption_tokens=12,
    )
    decoder = YDecoder.build(config, captions=CAPTIONS)
    if embedding_dim != model.config.embedding_dim:
        return decoder
    table = model.embed_images(frames())
    args = DecoderTrainingArguments(output_dir=str(tmp_path / "dec"), max_steps=120, batch_size=2, learning_rate=1e-2,
                                    warmup_steps=5, embedding_noise_std=0.0)
    train_decoder(decoder, table, CAPTIONS, args, progress=False)
    return decoder


def test_model_decodes_and_keeps_its_decoder_through_save_and_load(tmp_path, tiny_model):
    from eval.protocol import supports_captioning
    from vljepa.modeling import VLJEPAModel

    with pytest.raises(RuntimeError, match="no Y-decoder"):
        tiny_model.generate_captions(frames())
    tiny_model.attach_decoder(fitted_decoder(tiny_model, tmp_path))
    assert supports_captioning(tiny_model)  # what the captioning runner checks before generate_captions
    assert tiny_model.generate_captions(frames()) == CAPTIONS
    answers = tiny_model.generate_answers(frames(), ["", ""])  # an empty query is the caption path
    assert answers == CAPTIONS
    assert tiny_model.decode(tiny_model.embed_images(frames()), num_beams=2) == CAPTIONS

    tiny_model.save_pretrained(tmp_path / "model")
    assert (tmp_path / "model" / "decoder" / "config.json").is_file()
    from safetensors.torch import load_file

    assert not any(key.startswith("decoder.") for key in load_file(tmp_path / "model" / "model.safetensors"))
    loaded = VLJEPAModel.from_pretrained(tmp_path / "model")
    assert loaded.decoder is not None and loaded.generate_captions(frames()) == CAPTIONS


def test_a_decoder_for_another_embedding_space_is_refused(tmp_path, tiny_model):
    with pytest.raises(ValueError, match="reads 8-d embeddings but this model predicts 16-d"):
        tiny_model.attach_decoder(fitted_decoder(tiny_model, tmp_path, embedding_dim=8))


def test_vljepa_command_dispatches_decoding_subcommands(tmp_path, tiny_model, capsys):
    from vljepa.cli import main

    assert main(["--help"]) == 0
    usage = capsys.readouterr().out
    for command in ("train-decoder", "decode", "bench-decoding"):
        assert f"vljepa {command}" in usage

    tiny_model.save_pretrained(tmp_path / "bare")
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, image in enumerate(frames() * 2):
        image.save(folder / f"{i:02d}.png")
    argv = ["decode", "--model", str(tmp_path / "bare"), "--frames", str(folder), "--fps", "1", "--window_frames", "1"]
    assert main(argv) == 2
    assert "has no decoder/ subfolder; pass --decoder DIR" in capsys.readouterr().err

    tiny_model.attach_decoder(fitted_decoder(tiny_model, tmp_path)).save_pretrained(tmp_path / "with-decoder")
    out_json = tmp_path / "captions.json"
    argv = ["decode", "--model", str(tmp_path / "with-decoder"), "--frames", str(folder), "--fps", "1",
            "--window_frames", "1", "--mode", "uniform", "--rate_hz", "1", "--output_json", str(out_json)]
    assert main(argv) == 0
    assert [c["text"] for c in json.loads(out_json.read_text())] == CAPTIONS * 2
    capsys.readouterr()
    assert main(["bench-decoding", "--embedding_source", "model"]) == 2
    assert "embedding_source='model' needs --model" in capsys.readouterr().err
