"""End to end: `vljepa decode` on a folder of frames, the window folder for training, and the
selective-decoding benchmark on a few small generated streams (oracle embeddings, tiny decoder)."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image

from vljepa.decoding.decoder import YDecoder, YDecoderConfig
from vljepa.decoding.training import DecoderTrainingArguments, train_decoder

COLOURS = {"red": (255, 0, 0), "blue": (0, 0, 255)}
TEXTS = ["the screen is red", "the screen is blue", "nothing happens"]


def trained_tiny_decoder(path, table: torch.Tensor, texts: list[str], *, width: int = 32, steps: int = 120,
                         batch_size: int = 8) -> YDecoder:
    torch.manual_seed(0)
    config = YDecoderConfig(
        embedding_dim=table.shape[1], num_prefix_tokens=2, projection_hidden_dim=2 * width, scratch_hidden_size=width,
        scratch_num_heads=2, scratch_intermediate_size=2 * width, scratch_vocab_size=300, max_caption_tokens=24,
    )
    decoder = YDecoder.build(config, captions=texts)
    args = DecoderTrainingArguments(output_dir=str(path), max_steps=steps, batch_size=batch_size, learning_rate=1e-2,
                                    warmup_steps=5, embedding_noise_std=0.0)
    train_decoder(decoder, table, texts, args, progress=False)
    decoder.save_pretrained(path)
    return decoder


class ColourModel:
    """Embeds a frame (or montage) by its mean colour: red -> e0, blue -> e1."""

    def embed_images(self, images, *, batch_size=32):
        rows = []
        for image in images:
            r, _, b = image.convert("RGB").resize((1, 1)).getpixel((0, 0))
            rows.append(torch.tensor([float(r > b), float(b >= r), 0.0, 0.0]))
        return torch.stack(rows)


@pytest.fixture(scope="module")
def colour_decoder(tmp_path_factory):
    path = tmp_path_factory.mktemp("colour") / "decoder"
    trained_tiny_decoder(path, torch.eye(4)[:3], TEXTS)
    return path


@pytest.mark.parametrize(("mode", "extra", "expected"), [
    ("selective", ["--threshold", "0.5", "--smoothing_frames", "1"], 3),   # start, red->blue, blue->red
    ("ward", ["--segments_per_second", "0.5"], 3),                          # 6 s of frames -> 3 segments
    ("uniform", ["--rate_hz", "1"], 6),
])
def test_decode_main_prints_timestamped_captions(tmp_path, colour_decoder, monkeypatch, capsys, mode, extra, expected):
    import vljepa.persistence
    from vljepa.decoding.cli import decode_main

    frames = tmp_path / "frames"
    frames.mkdir()
    for i, colour in enumerate(["red"] * 4 + ["blue"] * 4 + ["red"] * 4):
        Image.new("RGB", (8, 8), COLOURS[colour]).save(frames / f"{i:03d}.png")
    monkeypatch.setattr(vljepa.persistence, "load_pretrained", lambda path: ColourModel())
    status = decode_main([
        "--model", str(tmp_path / "model"), "--decoder", str(colour_decoder), "--frames", str(frames),
        "--fps", "2", "--mode", mode, "--window_frames", "1", "--output_json", str(tmp_path / "out.json"), *extra,
    ])
    assert status == 0
    lines = capsys.readouterr().out.strip().splitlines()
    captions = json.loads((tmp_path / "out.json").read_text())
    assert len(captions) == expected and lines[-1].startswith(f"# {expected} decodes over 6.0 s")
    assert captions[0]["text"] == "the screen is red"
    if mode == "selective":
        assert [c["text"] for c in captions] == ["the screen is red", "the screen is blue", "the screen is red"]
        assert [c["time"] for c in captions] == [0.25, 2.25, 4.25]
        assert lines[1].split() == ["2.25", "s", "the", "screen", "is", "blue"]


def test_decode_main_errors_are_clear(tmp_path, capsys):
    from vljepa.decoding.cli import decode_main, read_frames

    (tmp_path / "frames").mkdir()
    Image.new("RGB", (4, 4)).save(tmp_path / "frames" / "a.png")
    with pytest.raises(ValueError, match="give their frame rate with --fps"):
        read_frames(tmp_path / "frames", None)
    (tmp_path / "clip.mp4").write_bytes(b"not a video")
    with pytest.raises(ValueError, match="(?s)cannot read video .*extract frames first"):
        read_frames(tmp_path / "clip.mp4", 4.0)
    assert decode_main(["--model", "m", "--frames", "f", "--fps", "-1"]) == 2
    assert "fps must be > 0" in capsys.readouterr().err


def test_read_frames_reads_an_animated_gif(tmp_path):
    from vljepa.decoding.cli import read_frames

    images = [Image.new("RGB", (6, 6), colour) for colour in COLOURS.values()]
    images[0].save(tmp_path / "clip.gif", save_all=True, append_images=images[1:], duration=250)
    frames, fps = read_frames(tmp_path / "clip.gif", None)
    assert len(frames) == 2 and fps == pytest.approx(4.0)


def test_window_caption_folder_is_a_captioning_dataset(tmp_path):
    from vljepa.data import load_vl_dataset
    from vljepa.decoding.windows import write_window_caption_folder

    frames = [Image.new("RGB", (8, 8), (i * 20, 0, 0)) for i in range(12)]
    stream = {
        "stream_id": "s0", "fps": 4.0, "frames": frames,
        "annotations": [{"start": 1.0, "end": 2.0, "text": "a red circle appears"}],
        "events": [{"kind": "appear", "start_frame": 4, "end_frame": 8}],
    }
    root = write_window_caption_folder([stream], tmp_path / "windows" / "train", window_frames=4,
                                       idle_text="nothing happens", idle_stride=3)
    dataset = load_vl_dataset("folder", "train", root=str(root))
    captions = [c[0] for c in dataset["captions"]]
    # Change at frame 6: windows ending at 6, 7, 8 show it; idle windows kept at frames 0, 3, 9.
    assert captions == ["nothing happens", "nothing happens", "a red circle appears", "a red circle appears",
                        "a red circle appears", "nothing happens"]
    assert dataset[0]["image"].size == (16, 16)


@pytest.mark.slow
def test_decoding_benchmark_on_small_streams(tmp_path, monkeypatch):
    """Oracle embeddings from a one-hot 'sentence encoder', so the decoder is exact and the protocol,
    tuning and outputs are what is under test."""
    from vljepa.data.streams import StreamConfig
    from vljepa.decoding import benchmark as decoding_benchmark
    from vljepa.decoding.cli import bench_decoding_main

    monkeypatch.setenv("JEPA_CACHE_DIR", str(tmp_path / "cache"))
    config = StreamConfig()
    texts = sorted({f"{a} {c} {s} appears" for c in config.colors for s in config.shapes for a in ("a",)}
                   | {f"the {c} {s} disappears" for c in config.colors for s in config.shapes}
                   | {f"the {c} {s} moves {d}" for c in config.colors for s in config.shapes
                      for d in ("left", "right", "up", "down")} | {"nothing happens"})
    table = torch.eye(len(texts))
    trained = trained_tiny_decoder(tmp_path / "decoder", table, texts, width=64, steps=300, batch_size=32)
    assert trained.decode(table) == texts

    def one_hot(model_id):
        return lambda batch: table[torch.tensor([texts.index(t) for t in batch])]

    monkeypatch.setattr("vljepa.decoding.training.sentence_transformer_embedder", one_hot)
    status = bench_decoding_main([
        "--output_dir", str(tmp_path / "bench"), "--embedding_source", "oracle", "--decoder",
        str(tmp_path / "decoder"), "--window_frames", "1", "--oracle_noise_std", "0.02", "--num_streams", "2",
        "--stream_num_frames", "48", "--uniform_rates", "0.25", "0.5", "1", "2", "--ward_rates", "0.1", "0.25",
        "0.5", "--drift_thresholds", "0.5", "0.2", "--drift_smoothing_frames", "1", "--drift_max_gaps", "0",
    ])
    assert status == 0
    out = tmp_path / "bench"
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["chosen_options"]) == {"ward", "drift"}
    assert summary["test_duration_s"] == 24.0
    for name in ("sweep.md", "cider_vs_rate.png", "cider_vs_rate_tuning.png", "examples.md", "config.yaml"):
        assert (out / name).is_file(), name
    sweep = json.loads((out / "sweep.json").read_text())
    uniform = {p["value"]: p for p in sweep["test"] if p["policy"] == "uniform"}
    assert uniform[2.0]["num_decodes"] == 2 * 24  # 12 s per stream at 2 Hz, from t = 0.125 to 11.625 s
    assert uniform[2.0]["cider"] >= uniform[0.25]["cider"]
    assert decoding_benchmark.MINILM in (out / "config.yaml").read_text()
