"""The Y-decoder: shapes, training, save/load, greedy vs beam, the training CLI (the model
that decodes with an attached decoder: test_vljepa_decoder_attach.py)."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file
from test_vljepa_kit import tiny_model, vl_tiny_st  # noqa: F401  (fixtures)

from vljepa.decoding.decoder import YDecoder, YDecoderConfig
from vljepa.decoding.training import (
    DecoderTrainingArguments,
    YDecoderArguments,
    noisy,
    reconstruction_report,
    run_decoder_training,
    train_decoder,
)

CAPTIONS = ["a red circle appears", "the blue square moves left", "the green star disappears", "nothing happens"]
DIM = 16


def tiny_decoder_config(kind: str, llm_path) -> YDecoderConfig:
    if kind == "scratch":
        return YDecoderConfig(
            embedding_dim=DIM, num_prefix_tokens=2, projection_hidden_dim=32, scratch_hidden_size=32,
            scratch_num_heads=2, scratch_intermediate_size=64, scratch_vocab_size=300, max_caption_tokens=16,
        )
    return YDecoderConfig(
        embedding_dim=DIM, num_prefix_tokens=2, projection_hidden_dim=32, language_model_init="pretrained",
        language_model_id=str(llm_path), language_model_num_layers=1, lora_rank=4, max_caption_tokens=16,
    )


@pytest.fixture(params=["scratch", "pretrained_lora"])
def decoder(request, tiny_llama3) -> YDecoder:
    torch.manual_seed(0)
    return YDecoder.build(tiny_decoder_config(request.param, tiny_llama3), captions=CAPTIONS)


def caption_embeddings() -> torch.Tensor:
    return torch.nn.functional.normalize(torch.randn(len(CAPTIONS), DIM, generator=torch.Generator().manual_seed(1)), dim=-1)


def quick_args(tmp_path, **overrides) -> DecoderTrainingArguments:
    values = {"output_dir": str(tmp_path), "max_steps": 60, "batch_size": 4, "learning_rate": 1e-2,
              "warmup_steps": 5, "logging_steps": 10, "embedding_noise_std": 0.0}
    values.update(overrides)
    return DecoderTrainingArguments(**values)


def test_forward_backward_shapes(decoder):
    embeddings = caption_embeddings()
    out = decoder(embeddings, CAPTIONS)
    ids, _ = decoder.tokenize_captions(CAPTIONS)
    assert out.loss.ndim == 0 and torch.isfinite(out.loss)
    assert out.logits.shape[:2] == (len(CAPTIONS), decoder.config.num_prefix_tokens + ids.shape[1])
    assert decoder.prefix(embeddings).shape == (len(CAPTIONS), 2, decoder.language_model.get_input_embeddings().embedding_dim)
    out.loss.backward()
    trainable = [p for p in decoder.parameters() if p.requires_grad]
    assert all(p.grad is not None for p in decoder.projection.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in trainable if p.dim() > 1)


def test_lora_freezes_base_weights(tiny_llama3, tmp_path):
    torch.manual_seed(0)
    decoder = YDecoder.build(tiny_decoder_config("pretrained_lora", tiny_llama3))
    frozen = {n: p.detach().clone() for n, p in decoder.language_model.named_parameters() if not p.requires_grad}
    assert frozen and all("lora_" not in n for n in frozen)
    train_decoder(decoder, caption_embeddings(), CAPTIONS, quick_args(tmp_path, max_steps=3), progress=False)
    for name, param in decoder.language_model.named_parameters():
        if name in frozen:
            assert torch.equal(param, frozen[name]), name


def test_training_reduces_loss_and_reconstructs(decoder, tmp_path):
    embeddings = caption_embeddings()
    before = decoder(embeddings, CAPTIONS).loss.item()
    history = train_decoder(decoder, embeddings, CAPTIONS, quick_args(tmp_path, max_steps=80), progress=False)
    after = decoder(embeddings, CAPTIONS).loss.item()
    # LoRA on a frozen random 32-wide Llama (near-uniform logits) moves slowly; a fresh LM fits quickly.
    assert after < (0.5 if decoder.config.language_model_init == "scratch" else 0.95) * before
    assert history[-1]["loss"] < history[0]["loss"]
    if decoder.config.language_model_init == "scratch":  # the tiny random Llama is too small to be exact
        report = reconstruction_report(decoder, embeddings, CAPTIONS, noise_std=0.0)
        assert report["exact_match"] == 1.0


def test_save_load_round_trip_reproduces_decoding(decoder, tmp_path):
    embeddings = caption_embeddings()
    train_decoder(decoder, embeddings, CAPTIONS, quick_args(tmp_path, max_steps=20), progress=False)
    expected = decoder.decode(embeddings, max_new_tokens=8)
    decoder.save_pretrained(tmp_path / "dec")
    saved = load_file(str(tmp_path / "dec" / "model.safetensors"))
    assert any(name.startswith("projection.") for name in saved)
    if decoder.config.finetuning == "lora":  # only the adapter, never the frozen base weights
        assert all(name.startswith("projection.") or "lora_" in name for name in saved)
    loaded = YDecoder.from_pretrained(tmp_path / "dec")
    assert loaded.decode(embeddings, max_new_tokens=8) == expected
    for (name, a), b in zip(decoder.state_dict().items(), loaded.state_dict().values()):
        assert torch.allclose(a, b), name


def test_from_pretrained_rejects_an_incomplete_folder(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        YDecoder.from_pretrained(tmp_path)


def test_greedy_and_beam_search(decoder, tmp_path):
    embeddings = caption_embeddings()
    train_decoder(decoder, embeddings, CAPTIONS, quick_args(tmp_path, max_steps=80), progress=False)
    greedy = decoder.decode(embeddings, max_new_tokens=16)
    beam = decoder.decode(embeddings, max_new_tokens=16, num_beams=3, batch_size=3)
    assert len(greedy) == len(beam) == len(CAPTIONS)
    assert all(isinstance(text, str) for text in greedy + beam)
    if decoder.config.language_model_init == "scratch":
        assert greedy == beam == CAPTIONS
    with pytest.raises(ValueError, match="num_beams"):
        decoder.decode(embeddings, num_beams=0)


def test_decode_checks_the_embedding_shape(decoder):
    with pytest.raises(ValueError, match=r"\[N, 16\]"):
        decoder.decode(torch.randn(2, DIM + 1))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"language_model_init": "scratch", "finetuning": "lora"}, "scratch LM must train fully"),
        ({"finetuning": "adapter"}, "finetuning must be"),
        ({"language_model_init": "gpt"}, "language_model_init"),
        ({"num_prefix_tokens": 0}, "num_prefix_tokens"),
        ({"scratch_hidden_size": 30, "scratch_num_heads": 4}, "divisible"),
    ],
)
def test_config_validation(overrides, message):
    with pytest.raises(ValueError, match=message):
        YDecoderConfig(**overrides)


def test_config_defaults_pick_the_finetuning():
    assert YDecoderConfig().finetuning == "full"
    assert YDecoderConfig(language_model_init="pretrained").finetuning == "lora"


def test_truncated_pretrained_lm_checks_depth(tiny_llama3):
    config = tiny_decoder_config("pretrained_lora", tiny_llama3)
    config.language_model_num_layers = 5
    with pytest.raises(ValueError, match="only 2 layers"):
        YDecoder.build(config)


def test_noise_keeps_cosine_as_documented():
    clean = torch.nn.functional.normalize(torch.randn(256, 384), dim=-1)
    cosine = torch.nn.functional.cosine_similarity(noisy(clean, 0.04, torch.Generator().manual_seed(0)), clean)
    assert 0.72 < cosine.mean().item() < 0.86  # 1 / sqrt(1 + 0.04^2 * 384) ~ 0.79


def test_recipe_fields_map_onto_the_config(tmp_path):
    from jepa_core.config import ConfigError, parse_config

    recipe = tmp_path / "r.yaml"
    recipe.write_text("language_model_init: scratch\nnum_prefix_tokens: 3\nmax_steps: 7\ncaption_dataset_options: {\"num_streams\": 2}\n")
    model_args, args = parse_config((YDecoderArguments, DecoderTrainingArguments), [str(recipe), "--output_dir", "x"])
    config = model_args.to_config()
    assert isinstance(config, YDecoderConfig) and config.num_prefix_tokens == 3 and args.max_steps == 7
    assert json.loads(args.caption_dataset_options) == {"num_streams": 2}
    recipe.write_text("num_prefix_token: 3\n")
    with pytest.raises(ConfigError, match="did you mean 'num_prefix_tokens'"):
        parse_config((YDecoderArguments, DecoderTrainingArguments), [str(recipe)])


def test_train_decoder_main_end_to_end(kit_dir, tmp_path):
    from test_vljepa_kit import fixed_tiny_sentence_transformer

    from vljepa.decoding.cli import train_decoder_main

    st_path = fixed_tiny_sentence_transformer(kit_dir)
    captions = tmp_path / "captions.txt"
    captions.write_text("\n".join(CAPTIONS) + "\n")
    status = train_decoder_main([
        "--output_dir", str(tmp_path / "run"), "--captions_file", str(captions), "--embedding_model", str(st_path),
        "--max_steps", "40", "--logging_steps", "10", "--batch_size", "4", "--learning_rate", "1e-2", "--scratch_hidden_size", "32",
        "--scratch_num_heads", "2", "--scratch_intermediate_size", "64", "--scratch_vocab_size", "300",
        "--projection_hidden_dim", "32", "--embedding_noise_std", "0",
    ])
    assert status == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["num_distinct_texts"] == len(CAPTIONS)
    assert metrics["text_history"][-1]["loss"] < metrics["text_history"][0]["loss"]
    loaded = YDecoder.from_pretrained(tmp_path / "run" / "decoder")
    assert loaded.config.embedding_dim == 32  # taken from the sentence encoder, not the default 384
    assert (tmp_path / "run" / "config.yaml").is_file()


def test_train_decoder_main_reports_bad_recipes(tmp_path, capsys):
    from vljepa.decoding.cli import train_decoder_main

    status = train_decoder_main(["--output_dir", str(tmp_path), "--finetuning", "lora"])
    assert status == 2
    assert "scratch LM must train fully" in capsys.readouterr().err


def test_training_in_a_vljepa_space_with_a_prediction_stage(tiny_model, tmp_path):  # noqa: F811
    tiny_model.save_pretrained(tmp_path / "model")
    images = tmp_path / "images"
    images.mkdir()
    with (images / "metadata.jsonl").open("w") as handle:
        for i, caption in enumerate(CAPTIONS * 2):
            Image.new("RGB", (32, 32), (40 * i, 0, 0)).save(images / f"{i}.png")
            handle.write(json.dumps({"file_name": f"{i}.png", "caption": caption}) + "\n")
    (tmp_path / "captions.txt").write_text("\n".join(CAPTIONS))
    model_args = YDecoderArguments(projection_hidden_dim=32, scratch_hidden_size=32, scratch_num_heads=2,
                                   scratch_intermediate_size=64, scratch_vocab_size=300)
    args = DecoderTrainingArguments(
        output_dir=str(tmp_path / "run"), captions_file=str(tmp_path / "captions.txt"), embedding_source="vljepa",
        embedding_model=str(tmp_path / "model"), max_steps=10, logging_steps=5, batch_size=4,
        prediction_dataset="folder", prediction_dataset_options={"root": str(images)}, prediction_steps=5,
        validation_fraction=0.25,
    )
    metrics = run_decoder_training(model_args, args)
    assert metrics["prediction_validation_before"]["count"] == 2  # 25% of the 8 images held out
    assert metrics["prediction_validation_after"]["count"] == 2
    assert metrics["prediction_history"][-1]["step"] == 5
    decoder = YDecoder.from_pretrained(tmp_path / "run" / "decoder")
    assert decoder.config.embedding_dim == tiny_model.config.embedding_dim  # the model's shared space
    assert len(decoder.decode(tiny_model.embed_texts(CAPTIONS[:2]))) == 2


def test_prediction_stage_needs_a_model():
    with pytest.raises(ValueError, match="embedding_source='vljepa'"):
        DecoderTrainingArguments(output_dir="x", prediction_dataset="folder")
