"""`make demo`'s job list: what it runs, in which order, with which threads (the jobs themselves are faked)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jepa_core import demo


@pytest.fixture
def recorded(monkeypatch, tmp_path):
    """Run the demo's VL-JEPA part with every job replaced by one that writes the metrics it would."""
    commands: list[list[str]] = []

    def fake_run(command: list[str]) -> float:
        commands.append(command)
        out = Path(command[command.index("--output_dir") + 1])
        out.mkdir(parents=True, exist_ok=True)
        (out / "metrics.json").write_text(json.dumps({"vqa_accuracy": 0.5}))
        return 0.0

    monkeypatch.setattr(demo, "_run", fake_run)
    monkeypatch.setattr(demo, "resolve_bundled", list)
    return commands, tmp_path


def _option(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def test_the_vljepa_jobs_run_both_stages_then_the_reworded_eval_on_two_threads(recorded, capsys):
    commands, out = recorded
    assert demo.main(["--output-dir", str(out), "--skip", "llm_jepa"]) == 0
    stage1, stage2, reworded = commands
    assert demo.VLJEPA_TEMPLATES_RECIPE in stage1 and demo.VLJEPA_RECIPE in stage2
    assert _option(stage2, "--init_from") == str(out / "vljepa-templates" / "model")
    assert _option(reworded, "--dataset") == "easyvqa-reworded"
    assert [_option(c, "--torch_num_threads") for c in commands] == ["2", "2", "2"]
    assert json.loads(capsys.readouterr().out)["vljepa"]["reworded_vqa_accuracy"] == 0.5


def test_finished_jobs_are_reused_and_the_thread_count_is_an_option(recorded):
    commands, out = recorded
    demo.main(["--output-dir", str(out), "--skip", "llm_jepa", "--vljepa-threads", "1"])
    assert [_option(c, "--torch_num_threads") for c in commands] == ["1", "1", "1"]
    demo.main(["--output-dir", str(out), "--skip", "llm_jepa"])
    assert len(commands) == 3  # every job had its metrics.json: nothing ran again
