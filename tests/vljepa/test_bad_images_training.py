"""Bad image files through the training data path (decode_stage_images, the feature cache, the trainer) and
`vljepa decode`: one decode function, one policy, skips recorded with their files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bad_images import BAD, UNUSUAL, check_unusual, write_bad_images
from PIL import Image
from test_vljepa_training import trainer_argv

from vljepa.data import load_vl_dataset
from vljepa.data.images import BadInputError, ImageLoader
from vljepa.decoding.cli import decode_main, read_frames
from vljepa.training.data import caption_stage, decode_stage_images

pytest_plugins = ["test_vljepa_kit"]  # shared fixtures: vl_tiny_st, one_torch_thread

COLOURS = ["red", "green", "blue", "yellow", "purple", "orange", "white", "black"]


def captioned_folder(root: Path, good: int = 16) -> Path:
    """``good`` plain images, then the bad and unusual files, each with a caption, in metadata.jsonl."""
    files = write_bad_images(root)
    rows = []
    for index in range(good):
        name = f"good{index:02d}.png"
        Image.new("RGB", (16, 16), COLOURS[index % 8]).save(root / name)
        rows.append({"file_name": name, "caption": f"a {COLOURS[index % 8]} square"})
    rows += [{"file_name": name, "caption": f"the file {name}"} for name in sorted(files)]
    (root / "metadata.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    return root


def test_stage_decoding_skips_bad_files_and_decodes_unusual_ones(tmp_path):
    root = captioned_folder(tmp_path / "data", good=2)
    stage = caption_stage(load_vl_dataset("folder", "train", root=root), epochs=1, source="folder[train]")
    loader, decoded = ImageLoader(on_bad_input="skip"), {}
    decode_stage_images(stage, loader, on_image=lambda row, image: decoded.setdefault(row, image))
    assert len(stage) == 2 + len(UNUSUAL)  # the examples of the 4 bad files are dropped
    names = {row: stage.dataset[row]["image_id"] for row in decoded}
    for row, image in decoded.items():
        if names[row] in UNUSUAL:
            check_unusual(names[row], image)
    assert dict(loader.report.counts) == {reason: 1 for reason in BAD.values()}
    where = {example["where"]: example["reason"] for example in loader.report.examples}
    for name, reason in BAD.items():
        row = 2 + sorted([*BAD, *UNUSUAL]).index(name)
        assert where[f"folder[train] row {row} ({root / name})"] == reason


def test_stage_decoding_under_error_names_the_file_row_and_remedy(tmp_path):
    root = captioned_folder(tmp_path / "data", good=1)
    stage = caption_stage(load_vl_dataset("folder", "train", root=root), epochs=1, source="folder[train]")
    with pytest.raises(BadInputError) as info:
        decode_stage_images(stage, ImageLoader(on_bad_input="error"))
    first_bad = sorted([*BAD, *UNUSUAL]).index("bomb.png") + 1
    assert str(info.value).startswith(f"folder[train] row {first_bad} ({root / 'bomb.png'}): too_large")
    assert "raise max_pixels if the image is genuine, or remove it" in str(info.value)


@pytest.mark.slow
@pytest.mark.parametrize("cache_features", ["true", "false"])
def test_trainer_skips_bad_images_and_lists_them_in_bad_inputs_json(
    tmp_path, tiny_timm, tiny_llama3, vl_tiny_st, one_torch_thread, cache_features, capsys
):
    from vljepa.cli import main

    root = captioned_folder(tmp_path / "data")
    argv = trainer_argv(
        tmp_path / "run", tmp_path / "cache", tiny_timm, tiny_llama3, vl_tiny_st, "--eval_task", "none",
        "--caption_dataset", "folder", "--caption_dataset_kwargs", json.dumps({"root": str(root)}),
        "--cache_features", cache_features, "--save_steps", "0",
    )  # fmt: skip
    assert main(argv) == 0
    report = json.loads((tmp_path / "run" / "bad_inputs.json").read_text())
    assert report["total"] == 4 and report["counts"] == {reason: 1 for reason in BAD.values()}
    assert sorted(Path(e["where"].split(" (")[1].rstrip(")")).name for e in report["examples"]) == sorted(BAD)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["skipped_bad_inputs"] == 4
    assert metrics["train_steps"] == 2 + 6  # (16 + 3 good) // 8 caption steps + 48 questions / 8
    assert "skipped 4 bad input(s)" in (tmp_path / "run" / "train.log").read_text()

    argv = [*argv, "--output_dir", str(tmp_path / "refused"), "--on_bad_input", "error"]
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert f"vljepa train: folder[train] row 16 ({root / 'bomb.png'}): too_large" in error
    assert not (tmp_path / "refused" / "checkpoints").exists()


def test_decode_frames_skip_and_error(tmp_path):
    frames = tmp_path / "frames"
    write_bad_images(frames)
    for index in range(3):
        Image.new("RGB", (16, 16), COLOURS[index]).save(frames / f"frame{index}.png")
    from vljepa.data.images import BadInputReport

    report = BadInputReport()
    images, fps = read_frames(frames, 4.0, on_bad_input="skip", report=report)
    assert len(images) == 3 + len(UNUSUAL) and fps == 4.0 and all(image.mode == "RGB" for image in images)
    assert sorted(Path(e["where"].removeprefix("frame ")).name for e in report.examples) == sorted(BAD)
    with pytest.raises(BadInputError, match=rf"frame {frames / 'bomb.png'}: too_large"):
        read_frames(frames, 4.0)


def test_decode_cli_refuses_a_bad_frame_naming_it(tmp_path, capsys):
    frames = tmp_path / "frames"
    frames.mkdir()
    Image.new("RGB", (16, 16)).save(frames / "a.png")
    (frames / "b.png").write_bytes(b"")
    code = decode_main(["--model", str(tmp_path / "no-model"), "--frames", str(frames), "--fps", "2"])
    assert code == 2
    assert f"vljepa decode: frame {frames / 'b.png'}: empty_file" in capsys.readouterr().err


def test_feature_cache_hash_of_a_lazily_opened_truncated_file_names_it(tmp_path):
    from vljepa.training.feature_cache import image_content_hash

    files = write_bad_images(tmp_path)
    with Image.open(files["truncated.png"]) as image, pytest.raises(BadInputError) as info:
        image_content_hash(image)  # Pillow alone: "OSError: image file is truncated", no file name
    assert str(info.value).startswith(f"{files['truncated.png']}: truncated")


def test_decode_cli_skips_bad_frames_and_lists_them(tmp_path, monkeypatch, capsys):
    import torch
    from test_selective_cli import TEXTS, ColourModel, trained_tiny_decoder

    import vljepa.persistence

    trained_tiny_decoder(tmp_path / "decoder", torch.eye(4)[:3], TEXTS, steps=30)
    frames = tmp_path / "frames"
    write_bad_images(frames)
    for index in range(4):
        Image.new("RGB", (8, 8), "red").save(frames / f"{index:03d}.png")
    monkeypatch.setattr(vljepa.persistence, "load_pretrained", lambda path: ColourModel())
    status = decode_main([
        "--model", str(tmp_path / "model"), "--decoder", str(tmp_path / "decoder"), "--frames", str(frames),
        "--fps", "2", "--mode", "uniform", "--rate_hz", "1", "--window_frames", "1", "--on_bad_input", "skip",
        "--output_json", str(tmp_path / "out" / "captions.json"),
    ])  # fmt: skip
    assert status == 0
    captured = capsys.readouterr()
    assert "skipped 4 bad input(s)" in captured.err
    for name, reason in BAD.items():
        assert f"frame {frames / name} ({reason})" in captured.err
    assert captured.out.strip().splitlines()[-1].startswith("# 4 decodes over 3.5 s")  # 4 + 3 good frames at 2 fps
    report = json.loads((tmp_path / "out" / "bad_inputs.json").read_text())
    assert report["total"] == 4 and {e["reason"] for e in report["examples"]} == set(BAD.values())
