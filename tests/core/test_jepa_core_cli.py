"""The shared subcommand front of `vljepa` and `llm-jepa`."""

from __future__ import annotations

from jepa_core.cli import split_subcommand


def test_split_subcommand(capsys):
    commands = {"train": None, "eval": None}
    assert split_subcommand("tool", "usage: tool", commands, ["train", "r.yaml", "--x", "1"]) == (
        "train", ["r.yaml", "--x", "1"]
    )
    assert split_subcommand("tool", "usage: tool", commands, ["--help"]) == 0
    assert "usage: tool" in capsys.readouterr().out
    assert split_subcommand("tool", "usage: tool", commands, []) == 2
    capsys.readouterr()
    assert split_subcommand("tool", "usage: tool", commands, ["trian"]) == 2
    assert "tool: unknown command 'trian'" in capsys.readouterr().err
