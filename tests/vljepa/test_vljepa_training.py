"""Training: recipes, optimizer groups, a loss that goes down, the trainer end to end with an exact resume."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from jepa_core.config import ConfigError, parse_config
from vljepa.training.arguments import VLJEPAModelArguments, VLJEPATrainingArguments
from vljepa.training.checkpointing import complete_checkpoints
from vljepa.training.trainer import build_model, optimizer_parameter_groups

# Y-decoder training and decoding-benchmark recipes map onto other dataclasses: tests/test_recipes_decoding.py.
DECODING_RECIPES = ("ydecoder-streams-text", "ydecoder-streams-vljepa-decoder", "ydecoder-bench-streams")
RECIPES = [
    p for p in sorted((Path(__file__).resolve().parents[2] / "recipes" / "vljepa").glob("*.yaml"))
    if p.stem not in DECODING_RECIPES
]


pytest_plugins = ["test_vljepa_kit"]  # shared fixtures: vl_tiny_st, tiny_model, one_torch_thread
pytestmark = pytest.mark.usefixtures("one_torch_thread")

@pytest.mark.parametrize("recipe", RECIPES, ids=[p.stem for p in RECIPES])
def test_every_recipe_parses_and_builds_with_tiny_stand_ins(recipe, tiny_clip, tiny_llama3, vl_tiny_st):
    text = recipe.read_text()
    assert text.startswith("#"), f"{recipe.name} must start with a comment (hardware, command, result, time)"
    model_args, training_args = parse_config((VLJEPAModelArguments, VLJEPATrainingArguments), [str(recipe)])
    assert training_args.caption_dataset or training_args.query_dataset
    tiny = dataclasses.replace(
        model_args, x_encoder_id=str(tiny_clip), x_encoder_processor_overrides="{}", predictor_model_id=str(tiny_llama3),
        predictor_first_layer=None, predictor_num_layers=1, y_encoder_id=str(vl_tiny_st),
        predictor_query_context_layers=None,  # the tiny LM has 2 layers: a context reads the one below the predictor
    )  # fmt: skip
    model = build_model(tiny)
    out = model(images=[Image.new("RGB", (32, 32), "red")] * 2, queries=["", "what?"], targets=["a", "b"])
    assert torch.isfinite(out.loss)


def test_unknown_recipe_key_fails_clearly(tmp_path):
    recipe = tmp_path / "bad.yaml"
    recipe.write_text("# test\nquery_dataset: easyvqa\nlearning_rat: 0.1\n")
    with pytest.raises(ConfigError, match=r"learning_rat.*did you mean 'learning_rate'"):
        parse_config((VLJEPAModelArguments, VLJEPATrainingArguments), [str(recipe)])


def test_cli_overrides_and_validation(tmp_path, capsys):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("# test\nquery_dataset: easyvqa\neval_task: none\nlearning_rate: 0.1\n")
    _, args = parse_config((VLJEPAModelArguments, VLJEPATrainingArguments), [str(recipe), "--learning_rate", "0.5"])
    assert args.learning_rate == 0.5
    with pytest.raises(ConfigError, match="eval_dataset"):
        parse_config((VLJEPAModelArguments, VLJEPATrainingArguments), [str(recipe), "--eval_task", "vqa"])
    with pytest.raises(SystemExit):  # argparse rejects a value outside the Literal and names the choices
        parse_config((VLJEPAModelArguments, VLJEPATrainingArguments), [str(recipe), "--loss_type", "mse"])
    assert "invalid choice: 'mse'" in capsys.readouterr().err
    recipe.write_text("# test\nquery_dataset: easyvqa\neval_task: none\nloss_type: mse\n")
    with pytest.raises(ConfigError, match="loss_type"):  # the same mistake in a recipe
        parse_config((VLJEPAModelArguments, VLJEPATrainingArguments), [str(recipe)])


def test_y_encoder_learning_rate_multiplier(tiny_model):
    args = VLJEPATrainingArguments(query_dataset="x", eval_task="none", learning_rate=1e-3, y_encoder_lr_multiplier=0.05)
    groups = optimizer_parameter_groups(tiny_model, args)
    by_name = {group["name"]: group for group in groups}
    y_ids = {id(p) for p in tiny_model.y_encoder.encoder.parameters()}
    for name, group in by_name.items():
        in_y = {id(p) in y_ids for p in group["params"]}
        assert len(in_y) == 1 and in_y.pop() == name.startswith("y_encoder")
        assert group["lr"] == pytest.approx(1e-3 * (0.05 if name.startswith("y_encoder") else 1.0))
        assert group["weight_decay"] == (0.0 if name.endswith("no_decay") else args.weight_decay)
    grouped = {id(p) for group in groups for p in group["params"]}
    assert grouped == {id(p) for p in tiny_model.parameters() if p.requires_grad}  # frozen ones left out
    assert id(tiny_model.loss_fn.log_logit_scale) in {id(p) for p in by_name["main_no_decay"]["params"]}


def test_loss_decreases_on_a_toy_set(tiny_model):
    torch.manual_seed(0)
    colours = ["red", "blue", "green", "yellow", "black", "white", "purple", "orange"]
    imgs = [Image.new("RGB", (32, 32), colour) for colour in colours]
    questions = ["what color is it?"] * len(colours)
    optimizer = torch.optim.AdamW([p for p in tiny_model.parameters() if p.requires_grad], lr=3e-3)
    tiny_model.train()
    losses = []
    for _ in range(30):
        loss = tiny_model(images=imgs, queries=questions, targets=colours).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    assert tiny_model.answer(imgs, questions, colours) == colours


# ----------------------------------------------------------------------------------------------------------
def trainer_argv(out: Path, cache: Path, vision: Path, llm: Path, st: Path, *extra: str) -> list[str]:
    return [
        "train", "--x_encoder_id", str(vision), "--predictor_model_id", str(llm), "--y_encoder_id", str(st),
        "--predictor_num_layers", "1", "--embedding_dim", "16",
        "--caption_dataset", "scenes", "--caption_dataset_kwargs", '{"num_images": 24, "use_cache": false}',
        "--caption_epochs", "1",
        "--query_dataset", "scenes-vqa", "--query_dataset_kwargs", '{"num_images": 8, "use_cache": false}',
        "--query_epochs", "1", "--per_device_train_batch_size", "8", "--learning_rate", "1e-3",
        "--eval_task", "vqa", "--eval_dataset", "scenes-vqa", "--eval_split", "test",
        "--eval_dataset_kwargs", '{"num_images": 4, "use_cache": false}', "--eval_batch_size", "16",
        "--report_to", "none", "--logging_steps", "1", "--save_steps", "2", "--save_total_limit", "20",
        "--output_dir", str(out), "--feature_cache_dir", str(cache), *extra,
    ]  # fmt: skip


@pytest.mark.slow
def test_trainer_end_to_end_with_exact_resume(tmp_path, tiny_timm, tiny_llama3, vl_tiny_st, capsys):
    from vljepa.cli import main
    from vljepa.modeling import VLJEPAModel

    first, cache = tmp_path / "run", tmp_path / "cache"
    assert main(trainer_argv(first, cache, tiny_timm, tiny_llama3, vl_tiny_st)) == 0
    metrics = json.loads((first / "metrics.json").read_text())
    assert 0.0 <= metrics["vqa_accuracy"] <= 1.0 and metrics["vqa_accuracy_by_type"]
    # 24 captions / 8 = 3 steps, 48 questions / 8 = 6 steps
    assert metrics["train_steps"] == 9
    for name in ("config.yaml", "run_info.json", "train.log", "eval/report.md", "eval/predictions.jsonl"):
        assert (first / name).is_file(), name
    model = VLJEPAModel.from_pretrained(first / "model")
    assert model.predict([Image.new("RGB", (32, 32))], ["what?"]).shape == (1, 16)
    checkpoints = complete_checkpoints(first / "checkpoints")
    assert [c.name for c in checkpoints] == ["step-0000002", "step-0000003", "step-0000004", "step-0000006",
                                             "step-0000008", "step-0000009"]
    assert not any(k.startswith("x_encoder.") for k in load_file(checkpoints[-1] / "model.safetensors"))
    assert json.loads((checkpoints[2] / "trainer_state.json").read_text())["stage_index"] == 1

    # A run interrupted after step 4 (later checkpoints, outputs, and a half-written one) resumes exactly.
    resumed = tmp_path / "resumed"
    shutil.copytree(first, resumed)
    for path in ("model", "metrics.json", "eval"):
        shutil.rmtree(resumed / path) if (resumed / path).is_dir() else (resumed / path).unlink()
    for checkpoint in complete_checkpoints(resumed / "checkpoints")[3:]:
        shutil.rmtree(checkpoint)
    (resumed / "checkpoints" / ".tmp-step-0000005").mkdir()  # a crash while writing: never complete-looking
    capsys.readouterr()
    assert main(trainer_argv(resumed, cache, tiny_timm, tiny_llama3, vl_tiny_st)) == 2  # refused, before writing
    refusal = capsys.readouterr().err
    assert "already holds checkpoints" in refusal and "--resume" in refusal
    assert main(trainer_argv(resumed, cache, tiny_timm, tiny_llama3, vl_tiny_st, "--resume")) == 0
    a = load_file(first / "model" / "model.safetensors")
    b = load_file(resumed / "model" / "model.safetensors")
    assert a.keys() == b.keys()
    for key, value in a.items():
        assert torch.equal(value, b[key]), key  # bit-identical

    # A curriculum: a run under another recipe (here with a query context) starts from this run's tensors.
    continued = tmp_path / "continued"
    assert main(trainer_argv(continued, cache, tiny_timm, tiny_llama3, vl_tiny_st, "--init_from", str(first / "model"),
                             "--predictor_query_context", "lm_residual", "--predictor_query_context_layers", "1",
                             "--learning_rate", "1e-12", "--eval_task", "none")) == 0
    c = load_file(continued / "model" / "model.safetensors")
    for key, value in a.items():  # a learning rate of 1e-12 leaves what it started from
        torch.testing.assert_close(c[key], value, rtol=0, atol=1e-9, msg=key)
    assert all(c[key].abs().max() < 1e-9 for key in c if key.startswith("predictor.query_projection.1."))  # fresh
    assert "Initialised from" in (continued / "train.log").read_text()


@pytest.mark.slow
def test_cli_eval_scores_a_saved_model(tmp_path, tiny_model, capsys):
    from vljepa.cli import main

    tiny_model.save_pretrained(tmp_path / "model")
    argv = ["eval", "--model", str(tmp_path / "model"), "--task", "retrieval", "--dataset", "scenes",
            "--dataset_kwargs", '{"num_images": 6, "use_cache": false}', "--output_dir", str(tmp_path / "eval"),
            "--feature_cache_dir", str(tmp_path / "cache")]
    assert main(argv) == 0
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["num_images"] == 6
    assert any((tmp_path / "cache").rglob("shard-*.safetensors"))  # eval images were cached
    with pytest.raises(SystemExit) as missing:  # argparse names the missing required fields
        main(["eval", "--model", str(tmp_path / "model"), "--task", "vqa"])
    assert missing.value.code == 2
    assert "--dataset" in capsys.readouterr().err


@pytest.mark.bundled
@pytest.mark.slow
def test_default_recipe_runs_on_the_bundled_models(tmp_path):
    """The default curriculum's two recipes on the real models (converted bundled weights): a few steps each, the
    second starting from the first's model (init_from), and a round-trip."""
    from vljepa.cli import main
    from vljepa.data import load_vl_dataset
    from vljepa.modeling import VLJEPAModel

    names = [p.name for p in RECIPES]
    short = ["--max_train_samples", "64", "--per_device_train_batch_size", "16", "--query_epochs", "1",
             "--eval_task", "none", "--report_to", "none", "--feature_cache_dir", str(tmp_path / "cache")]
    stage1 = RECIPES[names.index("easyvqa-templates-effnet-minilm.yaml")]
    assert main(["train", str(stage1), "--caption_epochs", "1", "--output_dir", str(tmp_path / "stage1"), *short]) == 0
    assert json.loads((tmp_path / "stage1" / "metrics.json").read_text())["train_steps"] == 8  # (64 + 64) / 16
    recipe = RECIPES[names.index("easyvqa-effnet-minilm.yaml")]
    assert main(["train", str(recipe), "--init_from", str(tmp_path / "stage1" / "model"),
                 "--output_dir", str(tmp_path / "run"), *short]) == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["train_steps"] == 4  # 64 questions / 16: the captions were stage 1's
    assert "Initialised from" in (tmp_path / "run" / "train.log").read_text()
    model = VLJEPAModel.from_pretrained(tmp_path / "run" / "model")
    assert model.config.predictor_query_context == "lm_residual"
    assert model.config.x_encoder_revision.startswith("bundled:")  # encoders recorded by id + revision
    assert model.config.predictor_revision.startswith("bundled:")
    test = load_vl_dataset("easyvqa", "test").select(range(4))
    scores = model.answer_scores(list(test["image"]), list(test["question"]), list(test["candidates"]))
    assert scores.shape == (4, 13) and torch.isfinite(scores).all()
    assert model.x_encoder.num_tokens_per_frame == 1 and model.x_encoder.hidden_size == 320


@pytest.mark.slow
@pytest.mark.multiprocess
def test_accelerate_launch_two_cpu_processes_gathers_negatives(tmp_path, tiny_timm, tiny_llama3, vl_tiny_st):
    """`accelerate launch` (gloo, 2 ranks) trains end to end; InfoNCE sees both ranks' samples as candidates."""
    import os
    import re
    import socket
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    with socket.socket() as probe:  # a free port, so parallel launches do not collide
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    out = tmp_path / "run"
    argv = trainer_argv(out, tmp_path / "cache", tiny_timm, tiny_llama3, vl_tiny_st, "--per_device_train_batch_size", "4")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(root)}
    command = [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
               str(root / "recipes" / "accelerate" / "cpu-2proc.yaml"), "--main_process_port", str(port),
               "-m", "vljepa.cli", *argv]
    done = subprocess.run(command, check=False, cwd=root, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["num_processes"] == 2 and metrics["train_steps"] == 9  # global batch 2 x 4, as with 1 x 8
    candidates = [int(n) for n in re.findall(r"num_candidates=(\d+)", (out / "train.log").read_text())]
    assert candidates and max(candidates) > 4  # more distinct targets than one rank's batch of 4
