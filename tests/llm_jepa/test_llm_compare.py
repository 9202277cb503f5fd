"""``llm-jepa compare``: statistics against hand-computed values, and the seed loop with training and
evaluation replaced by fakes (fast)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from llm_jepa import compare
from llm_jepa.compare import (
    CompareArguments,
    compared_metrics,
    holm_correction,
    mean_std,
    paired_tests,
    run_comparison,
)


def test_mean_and_sample_std():
    mean, std = mean_std([0.5, 0.6, 0.7])
    assert mean == pytest.approx(0.6) and std == pytest.approx(0.1)
    assert mean_std([0.3]) == (0.3, None)


def t_test_p_df2(t):
    """Two-sided p of Student's t with 2 degrees of freedom: CDF(t) = 1/2 + t / (2 sqrt(2 + t^2))."""
    return 1 - abs(t) / math.sqrt(2 + t * t)


@pytest.mark.parametrize(
    ("baseline", "treatment", "t_stat", "wilcoxon_p"),
    [
        # differences 0.1, 0.2, 0.3: mean 0.2, sd 0.1, t = 0.2 / (0.1 / sqrt 3); all 3 positive: exact p = 2/8
        ([0.5, 0.6, 0.7], [0.6, 0.8, 1.0], 0.2 / (0.1 / math.sqrt(3)), 0.25),
        # differences -0.1, -0.2, -0.3: the same, mirrored
        ([0.6, 0.8, 1.0], [0.5, 0.6, 0.7], -0.2 / (0.1 / math.sqrt(3)), 0.25),
    ],
)
def test_paired_tests_against_hand_values(baseline, treatment, t_stat, wilcoxon_p):
    result = paired_tests(baseline, treatment)
    assert result["t_test_p"] == pytest.approx(t_test_p_df2(t_stat), rel=1e-6)
    assert result["wilcoxon_p"] == pytest.approx(wilcoxon_p)
    assert result["notes"] == []


def test_paired_t_test_hand_value_with_tied_differences():
    # differences 0.1, 0.2, 0.2: mean 1/6, sd 0.057735 -> t = 5.0 exactly, p = 1 - 5 / sqrt(27) = 0.037749
    result = paired_tests([0.5, 0.6, 0.7], [0.6, 0.8, 0.9])
    assert result["t_test_p"] == pytest.approx(1 - 5 / math.sqrt(27), rel=1e-6)
    assert 0 < result["wilcoxon_p"] <= 1


@pytest.mark.parametrize(
    ("baseline", "treatment", "t_p", "w_p", "note"),
    [
        ([0.5, 0.6, 0.7], [0.6, 0.7, 0.8], None, 0.25, "same difference"),  # t undefined: zero spread
        ([0.5, 0.6, 0.7], [0.5, 0.6, 0.7], None, 1.0, "no seed differs"),
        ([0.5], [0.9], None, None, "fewer than two"),
    ],
)
def test_degenerate_tests_say_why(baseline, treatment, t_p, w_p, note):
    result = paired_tests(baseline, treatment)
    assert result["t_test_p"] == t_p
    assert result["wilcoxon_p"] == (pytest.approx(w_p) if w_p is not None else None)
    assert any(note in text for text in result["notes"])


def test_holm_correction_hand_values():
    # sorted: a 0.01 * 3 = 0.03; c 0.03 * 2 = 0.06; b 0.04 * 1 = 0.04 -> raised to the running max 0.06
    adjusted = holm_correction({"a": 0.01, "b": 0.04, "c": 0.03, "d": None})
    assert adjusted == pytest.approx({"a": 0.03, "b": 0.06, "c": 0.06, "d": None})
    assert holm_correction({"a": 0.6, "b": 0.7}) == {"a": 1.0, "b": 1.0}


def test_compared_metrics_skip_counts_and_duplicates():
    single = {
        "num_examples": 5,
        "exact_match": 0.2,
        "regex/exact_match": 0.2,
        "regex/string_match": 0.2,
        "regex/semantic_equivalence": 0.4,
        "regex/invalid_predictions": 1,
    }
    assert compared_metrics([single]) == ["exact_match", "regex/string_match", "regex/semantic_equivalence"]
    mixed = {**single, "sql/exact_match": 0.1, "sql/execution_match": 0.3}
    assert "regex/exact_match" in compared_metrics([mixed]) and "sql/exact_match" in compared_metrics([mixed])


# ---------------------------------------------------------------------------------------------- the seed loop

BASELINE = {1: 0.5, 2: 0.6, 3: 0.7}
JEPA = {1: 0.6, 2: 0.8, 3: 1.0}


@pytest.fixture()
def recipe(tmp_path):
    path = tmp_path / "recipe.yaml"
    path.write_text("dataset: regex-synth\ndataset_kwargs: {n: 4, seed: 0}\njepa_loss_weight: 2.0\n")
    return path


def fake_records(dataset, arm, id_prefix=""):
    """Per-example records: the baseline is right on item 0 only, LLM-JEPA on items 0 and 1 (semantic);
    strict exact match is right on item 0 for both arms."""
    right = 2 if arm == "llm_jepa" else 1
    return [
        {"id": id_prefix + example_id, "task": "regex", "exact_match": float(i == 0),
         "semantic_equivalence": float(i < right)}
        for i, example_id in enumerate(dataset["id"])
    ]


@pytest.fixture()
def fakes(monkeypatch):
    calls = {"train": [], "eval": [], "id_prefix": {}}

    def fake_training(argv):
        calls["train"].append(list(argv))
        run_dir = Path(argv[argv.index("--output_dir") + 1])
        run_dir.mkdir(parents=True, exist_ok=True)
        start = 2.0 if "--jepa_loss_weight" in argv else 2.2
        history = [{"step": step, "loss": start / step, "lm_loss": start / step} for step in (1, 2, 3)]
        (run_dir / "trainer_state.json").write_text(json.dumps({"log_history": history}))
        return run_dir / "model"

    def fake_evaluation(model_dir, dataset, args, output_dir):
        calls["eval"].append((model_dir, len(dataset), output_dir))
        arm, seed = model_dir.parent.name, int(model_dir.parent.parent.name.split("-")[1])
        output_dir.mkdir(parents=True, exist_ok=True)
        records = fake_records(dataset, arm, calls["id_prefix"].get(arm, ""))
        (output_dir / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
        score = (JEPA if arm == "llm_jepa" else BASELINE).get(seed, (seed % 7) / 10)
        return {
            "num_examples": len(dataset),
            "exact_match": score / 2,
            "regex/exact_match": score / 2,
            "regex/string_match": score / 2,
            "regex/semantic_equivalence": score,
            "regex/invalid_predictions": seed,
        }

    monkeypatch.setattr(compare, "run_training", fake_training)
    monkeypatch.setattr(compare, "evaluate_run", fake_evaluation)
    return calls


def test_comparison_trains_both_arms_per_seed_and_reports(recipe, tmp_path, fakes):
    args = CompareArguments(seeds=3, output_dir=str(tmp_path / "cmp"), eval_limit=3)
    report = run_comparison(str(recipe), ["--max_steps", "2"], args)
    assert len(fakes["train"]) == 6
    for seed in (1, 2, 3):
        base, jepa = fakes["train"][2 * (seed - 1)], fakes["train"][2 * seed - 1]
        for argv, arm in ((base, "baseline"), (jepa, "llm_jepa")):
            assert argv[0] == str(recipe) and argv[1:3] == ["--max_steps", "2"]
            assert argv[argv.index("--seed") + 1] == str(seed)
            assert argv[argv.index("--output_dir") + 1] == str(tmp_path / "cmp" / f"seed-{seed}" / arm)
        assert base[base.index("--jepa_loss_weight") + 1] == "0" and "--jepa_loss_weight" not in jepa
    assert all(size == 3 for _, size, _ in fakes["eval"])  # eval_limit

    semantic = report["metrics"]["regex/semantic_equivalence"]
    assert semantic["baseline"] == [0.5, 0.6, 0.7] and semantic["llm_jepa"] == [0.6, 0.8, 1.0]
    assert semantic["mean_difference"] == pytest.approx(0.2)
    assert semantic["t_test_p"] == pytest.approx(t_test_p_df2(0.2 / (0.1 / math.sqrt(3))), rel=1e-6)
    assert semantic["wilcoxon_p"] == pytest.approx(0.25)
    # three metrics compared (exact_match, string_match, semantic_equivalence); the smallest p triples
    p_values = sorted(report["metrics"][name]["t_test_p"] for name in report["metrics"])
    assert len(report["metrics"]) == 3
    assert min(r["t_test_p_holm"] for r in report["metrics"].values()) == pytest.approx(3 * p_values[0])

    written = json.loads((tmp_path / "cmp" / "comparison.json").read_text())
    assert written["metrics"]["regex/semantic_equivalence"]["t_test_p"] == pytest.approx(semantic["t_test_p"])
    markdown = (tmp_path / "cmp" / "comparison.md").read_text()
    assert "| regex/semantic_equivalence | 0.6000 ± 0.1000 | 0.8000 ± 0.2000 | +0.2000 |" in markdown
    assert "2/2^N = 0.2500" in markdown and "Holm" in markdown
    assert "| regex/semantic_equivalence | 2 | 0.6000 | 0.8000 |" in markdown

    # per example: 3 seeds x 3 items; per seed LLM-JEPA alone gets item 1 right (c = 3, b = 0)
    semantic, strict = report["examples"]["semantic"], report["examples"]["strict"]
    assert (semantic["num_pairs"], semantic["num_items"]) == (9, 3)
    assert (semantic["baseline_only"], semantic["treatment_only"], semantic["both_correct"]) == (0, 3, 3)
    assert semantic["mcnemar_p"] == pytest.approx(2 / 2**3)
    assert semantic["bootstrap"]["difference"] == pytest.approx(1 / 3)
    assert semantic["per_seed"] == {"baseline": [1 / 3] * 3, "llm_jepa": [2 / 3] * 3}
    assert strict["mcnemar_p"] == 1.0 and strict["treatment_only"] == strict["baseline_only"] == 0
    assert written["examples"]["semantic"]["mcnemar_p"] == pytest.approx(0.25)
    assert "| 9 (3 x 3) | 0.3333 | 0.6667 | +0.3333 [" in markdown and "| 3 | 0 | 3 | 0.25 |" in markdown
    assert "strict string exact match" in markdown and "McNemar" in markdown
    assert report["plot"] == "loss_vs_step.png" and (tmp_path / "cmp" / "loss_vs_step.png").stat().st_size > 0
    assert "](loss_vs_step.png)" in markdown


def test_predictions_with_different_ids_are_refused(recipe, tmp_path, fakes):
    fakes["id_prefix"]["llm_jepa"] = "other-"
    args = CompareArguments(seeds=2, output_dir=str(tmp_path / "cmp"), eval_limit=2)
    with pytest.raises(ValueError, match="seed 1: the baseline and LLM-JEPA predictions hold different example"):
        run_comparison(str(recipe), [], args)


def test_finished_runs_are_reused(recipe, tmp_path, fakes, monkeypatch):
    args = CompareArguments(seeds=2, output_dir=str(tmp_path / "cmp"))
    first = run_comparison(str(recipe), [], args)

    def no_training(argv):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(compare, "run_training", no_training)
    assert run_comparison(str(recipe), [], args)["metrics"] == first["metrics"]
    with pytest.raises(AssertionError, match="trained again"):  # a changed command line retrains
        run_comparison(str(recipe), ["--max_steps", "3"], args)


def test_an_ablation_reuses_the_baseline_of_a_finished_comparison(recipe, tmp_path, fakes):
    main_args = CompareArguments(seeds=2, output_dir=str(tmp_path / "main"))
    main = run_comparison(str(recipe), [], main_args)
    trained_before = len(fakes["train"])
    ablation_args = CompareArguments(
        seeds=2, output_dir=str(tmp_path / "k3"), baseline_from=str(tmp_path / "main")
    )
    report = run_comparison(str(recipe), ["--num_pred_tokens", "3"], ablation_args)
    trained = fakes["train"][trained_before:]
    assert len(trained) == 2 and all("--jepa_loss_weight" not in argv for argv in trained)  # LLM-JEPA arms only
    assert report["runs"]["baseline"] == main["runs"]["baseline"]
    # the reused baseline trained with k = 1 (the default); this comparison's baseline would have k = 3
    expected = {"num_pred_tokens": ["1", "3"]}
    assert report["baseline_differences"] == {"1": expected, "2": expected}
    assert "reused from" in (tmp_path / "k3" / "comparison.md").read_text()
    assert "`num_pred_tokens`" in (tmp_path / "k3" / "comparison.md").read_text()
    assert report["examples"]["semantic"]["baseline_only"] == 0  # read from the reused baseline's predictions
    missing = CompareArguments(seeds=3, output_dir=str(tmp_path / "k0"), baseline_from=str(tmp_path / "main"))
    with pytest.raises(FileNotFoundError, match="no finished baseline .* seed 3"):
        run_comparison(str(recipe), ["--num_pred_tokens", "0"], missing)


def test_main_forwards_unknown_flags_to_training(recipe, tmp_path, fakes, capsys):
    code = compare.main(
        [
            str(recipe),
            "--seeds",
            "2",
            "--output_dir",
            str(tmp_path / "cli"),
            "--max_steps",
            "5",
            "--eval_limit",
            "2",
        ]
    )
    assert code == 0
    assert all(argv[1:3] == ["--max_steps", "5"] for argv in fakes["train"])
    assert "# LLM-JEPA vs. baseline" in capsys.readouterr().out


def test_main_takes_the_recipe_as_config_flag(recipe, tmp_path, fakes, capsys):
    from jepa_core.config import ConfigError

    argv = ["--seeds", "2", "--output_dir", str(tmp_path / "cli"), "--config", str(recipe), "--max_steps", "5"]
    assert compare.main(argv) == 0
    assert all(argv[0] == str(recipe) for argv in fakes["train"])
    assert "# LLM-JEPA vs. baseline" in capsys.readouterr().out
    with pytest.raises(ConfigError, match="two recipes"):
        compare.main([str(recipe), "--config", str(recipe), "--seeds", "2"])


@pytest.mark.parametrize(
    ("recipe_text", "overrides", "message"),
    [
        ("dataset: regex-synth\njepa_loss_weight: 0.0\n", [], "would not use the JEPA term"),
        ("dataset: regex-synth\n", ["--seed", "4"], "sets --seed itself"),
        ("dataset: regex-synth\n", ["--jepa_loss_weight", "2"], "sets --jepa_loss_weight itself"),
    ],
)
def test_bad_comparisons_fail_before_training(tmp_path, fakes, recipe_text, overrides, message):
    path = tmp_path / "recipe.yaml"
    path.write_text(recipe_text)
    with pytest.raises(ValueError, match=message):
        run_comparison(str(path), overrides, CompareArguments(seeds=2, output_dir=str(tmp_path / "x")))
    assert fakes["train"] == []


def test_seed_list_and_separate_eval_dataset(recipe, tmp_path, fakes):
    eval_file = tmp_path / "eval.jsonl"
    eval_file.write_text(
        "".join(
            json.dumps(
                {"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": "a"}]}
            )
            + "\n"
            for i in range(5)
        )
    )
    args = CompareArguments(
        seeds=2,
        seed_list="82,4",
        output_dir=str(tmp_path / "cmp"),
        eval_dataset=f"jsonl:{eval_file}",
        eval_dataset_kwargs='{"task": "regex"}',
    )
    report = run_comparison(str(recipe), [], args)
    assert report["seeds"] == [82, 4] and report["dataset"] == f"jsonl:{eval_file}"
    assert [argv[argv.index("--seed") + 1] for argv in fakes["train"]] == ["82", "82", "4", "4"]
    assert {size for _, size, _ in fakes["eval"]} == {5}
    with pytest.raises(ValueError, match="does not hold --seeds 3"):
        CompareArguments(seeds=3, seed_list="1,1,2")
    assert CompareArguments(seed_list="5,6,7").seeds == 3  # --seeds defaults to the list's length
    with pytest.raises(ValueError, match="give --seeds N or --seed_list"):
        CompareArguments()
    with pytest.raises(ValueError, match="needs eval_dataset"):
        CompareArguments(seeds=2, eval_dataset_kwargs='{"n": 3}')


@pytest.fixture()
def one_torch_thread():
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models on a shared machine: intra-op threads only add overhead
    yield
    torch.set_num_threads(threads)


@pytest.mark.slow  # four 2-step trainings and evaluations: ~25 s on 2 busy CPU cores
def test_real_training_on_the_tiny_model(tiny_llama3, tmp_path, one_torch_thread):
    """Both arms really train (2 steps) and score: the compare loop against llm_jepa.run as it is."""
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(
        f"model_name_or_path: {tiny_llama3}\npeft: none\ndataset: regex-synth\n"
        "dataset_kwargs: {n: 8, seed: 0}\nmax_length: 256\njepa_loss_weight: 1.0\nmax_steps: 2\n"
        "per_device_train_batch_size: 2\nreport_to: none\nsave_strategy: 'no'\ndataloader_pin_memory: false\n"
        "logging_steps: 1\n"
    )
    args = CompareArguments(seeds=2, output_dir=str(tmp_path / "cmp"), eval_limit=3, max_new_tokens=4)
    report = run_comparison(str(recipe), [], args)
    root = tmp_path / "cmp"
    assert {p.name for p in root.iterdir()} >= {"comparison.json", "comparison.md", "config.yaml", "seed-1"}
    for seed in (1, 2):
        for arm in ("baseline", "llm_jepa"):
            run = json.loads((root / f"seed-{seed}" / arm / "compare_run.json").read_text())
            assert (root / f"seed-{seed}" / arm / "eval" / "predictions.jsonl").is_file()
            assert run["metrics"]["num_examples"] == 3
    for arm, weight in (("baseline", 0.0), ("llm_jepa", 1.0)):  # what each arm was really trained with
        saved = json.loads((root / "seed-2" / arm / "llm_jepa_config.json").read_text())
        assert saved["objective"]["jepa_loss_weight"] == weight
    assert set(report["metrics"]) == {"exact_match", "regex/string_match", "regex/semantic_equivalence"}
    for scoring in ("semantic", "strict"):  # per-example pairs from the runs' predictions.jsonl
        stats = report["examples"][scoring]
        assert stats["num_pairs"] == 6 and stats["num_items"] == 3 and 0 <= stats["mcnemar_p"] <= 1
        counts = ("both_correct", "both_wrong", "baseline_only", "treatment_only")
        assert sum(stats[key] for key in counts) == 6
    assert report["plot"] == "loss_vs_step.png" and (root / "loss_vs_step.png").is_file()  # trainer_state.json


def test_compare_records_hold_no_token(recipe, tmp_path, fakes, monkeypatch):
    from fake_hub import files_containing

    token = "hf_CompareTokenDoNotLeak0123456789"
    args = CompareArguments(seeds=1, output_dir=str(tmp_path / "cmp"))
    first = run_comparison(str(recipe), ["--hub_token", token], args)
    assert fakes["train"][0][fakes["train"][0].index("--hub_token") + 1] == token  # training gets it, in memory
    assert files_containing(tmp_path / "cmp", token) == []

    def no_training(argv):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(compare, "run_training", no_training)  # the redacted record still matches: reused
    assert run_comparison(str(recipe), ["--hub_token", token], args)["metrics"] == first["metrics"]
