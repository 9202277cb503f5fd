"""``llm-jepa eval``: prompting, batching, scoring and the files it writes (tiny random Llama, CPU)."""

from __future__ import annotations

import json
import sqlite3

import pytest
import torch

from llm_jepa.data.registry import rows_to_dataset
from llm_jepa.evaluate import (
    aggregate_metrics,
    evaluate_model,
    generate_predictions,
    is_score,
    main,
    score_example,
)


@pytest.fixture(autouse=True)
def one_thread():
    # tiny models on a shared 2-core machine run faster without intra-op threads
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture()
def shop_db(tmp_path):
    path = tmp_path / "shop.sqlite"
    with sqlite3.connect(path) as connection:
        connection.executescript(
            "CREATE TABLE item (name TEXT, price REAL);INSERT INTO item VALUES ('pen', 1.5), ('book', 12.0);"
        )
    connection.close()
    return str(path)


def row(task, user, gold, reference=None, db_path=""):
    return {
        "messages": [
            {"role": "system", "content": "answer"},
            {"role": "user", "content": user},
            {"role": "assistant", "content": gold},
        ],
        "id": f"{task}-{user[:8]}",
        "task": task,
        "reference": reference or gold,
        "db_path": db_path,
    }


@pytest.fixture()
def mixed_rows(shop_db):
    return [
        row("regex", "lines with a number", ".*[0-9].*"),
        row("regex", "lines with dog", ".*(dog).*"),
        row("regex", "lines of digits", "[0-9]+"),
        row("gsm8k", "2 + 3 apples?", "2 + 3 = 5\n#### 5", reference="5"),
        row("sql", "names of items", "SELECT name FROM item", db_path=shop_db),
        row("generic", "say hi", "hi"),
    ]


def test_scoring_hand_cases(mixed_rows):
    predictions = [
        ".*[0-9].*",
        ".*dog.*",
        "[0-9",
        "1 + 4 = 5\n#### $5.00",
        "select name from item order by price",
        "hi ",
    ]
    records = [score_example(r, p) for r, p in zip(mixed_rows, predictions)]
    assert [r["exact_match"] for r in records] == [1.0, 0.0, 0.0, 0.0, 0.0, 1.0]
    assert [r.get("regex_outcome") for r in records[:3]] == ["equivalent", "equivalent", "invalid_prediction"]
    assert records[3]["predicted_answer"] == "5" and records[3]["answer_match"] == 1.0
    assert records[4]["sql_outcome"] == "match"
    metrics = aggregate_metrics(records)
    assert metrics == pytest.approx(
        {
            "num_examples": 6,
            "exact_match": 2 / 6,
            "generic/num_examples": 1,
            "generic/exact_match": 1.0,
            "gsm8k/num_examples": 1,
            "gsm8k/exact_match": 0.0,
            "gsm8k/answer_match": 1.0,
            "gsm8k/no_answer": 0,
            "gsm8k/over_limit": 0,
            "regex/num_examples": 3,
            "regex/exact_match": 1 / 3,
            "regex/string_match": 1 / 3,
            "regex/semantic_equivalence": 2 / 3,
            "regex/invalid_predictions": 1,
            "regex/invalid_references": 0,
            "regex/timeouts": 0,
            "regex/over_limit": 0,
            "sql/num_examples": 1,
            "sql/exact_match": 0.0,
            "sql/execution_match": 1.0,
            "sql/prediction_errors": 0,
            "sql/reference_errors": 0,
            "sql/timeouts": 0,
            "sql/over_limit": 0,
        }
    )
    assert is_score("regex/semantic_equivalence") and not is_score("regex/invalid_predictions")


@pytest.mark.parametrize(
    ("dialect", "outcome"),
    [
        ("nl-rx", "equivalent"),  # ~(...) is NL-RX's "not": lines without an a
        ("standard", "different"),  # '~' is a literal character
        (None, "different"),  # rows without a declared dialect are standard regexes
    ],
)
def test_regex_rows_are_parsed_in_their_sources_dialect(dialect, outcome):
    example = row("regex", "lines without an a", "[^a]*")
    if dialect is not None:
        example["regex_dialect"] = dialect
    assert score_example(example, "~(.*a.*)")["regex_outcome"] == outcome


class EchoModel:
    """Stands in for a causal LM: records the prompts and answers with fixed token ids."""

    device = torch.device("cpu")

    def __init__(self, tokenizer, answer):
        self.tokenizer, self.answer, self.prompts = tokenizer, answer, []

    def generate(self, input_ids, attention_mask, max_new_tokens, **kwargs):
        assert kwargs["do_sample"] is False
        self.prompts += [(ids, mask) for ids, mask in zip(input_ids.tolist(), attention_mask.tolist())]
        reply = self.tokenizer(self.answer, add_special_tokens=False)["input_ids"][:max_new_tokens]
        return torch.cat([input_ids, torch.tensor([reply] * len(input_ids))], dim=1)


def test_prompts_are_left_padded_and_hold_no_answer(tiny_llama3, mixed_rows):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama3)
    model = EchoModel(tokenizer, "[0-9]+")
    predictions = generate_predictions(
        model, tokenizer, rows_to_dataset(mixed_rows), batch_size=4, max_new_tokens=16
    )
    assert predictions == ["[0-9]+"] * len(mixed_rows)
    assert tokenizer.padding_side == "right"  # restored
    for ids, mask in model.prompts:
        assert mask == sorted(mask)  # left padding: zeros first
        text = tokenizer.decode([i for i, m in zip(ids, mask) if m])
        assert text.endswith("<|start_header_id|>assistant<|end_header_id|>\n\n")
        assert ".*[0-9].*" not in text and "#### 5" not in text


def test_batched_generation_matches_one_by_one(tiny_llama3, mixed_rows):
    from llm_jepa.loading import load_for_inference

    model, tokenizer = load_for_inference(tiny_llama3)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():  # larger random weights: varied answers instead of blank lines
        for parameter in model.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.5)
    dataset = rows_to_dataset(mixed_rows)
    batched = generate_predictions(model, tokenizer, dataset, batch_size=6, max_new_tokens=6)
    single = generate_predictions(model, tokenizer, dataset, batch_size=1, max_new_tokens=6)
    assert len(set(batched)) > 2  # the comparison below is not between empty strings
    assert batched == single


def test_evaluate_model_writes_metrics_and_predictions(tiny_llama3, mixed_rows, tmp_path):
    from llm_jepa.loading import load_for_inference

    model, tokenizer = load_for_inference(tiny_llama3)
    metrics = evaluate_model(
        model,
        tokenizer,
        rows_to_dataset(mixed_rows),
        batch_size=4,
        max_new_tokens=6,
        output_dir=tmp_path / "eval",
    )
    assert json.loads((tmp_path / "eval" / "metrics.json").read_text()) == metrics
    records = [
        json.loads(line) for line in (tmp_path / "eval" / "predictions.jsonl").read_text().splitlines()
    ]
    assert [r["id"] for r in records] == [r["id"] for r in mixed_rows]
    assert aggregate_metrics(records) == metrics
    assert metrics["num_examples"] == 6 and 0.0 <= metrics["regex/semantic_equivalence"] <= 1.0


def test_cli_end_to_end(tiny_llama3, tmp_path):
    output = tmp_path / "cli"
    code = main(
        [
            "--model",
            str(tiny_llama3),
            "--dataset",
            "regex-synth",
            "--split",
            "test",
            "--dataset_kwargs",
            '{"n": 5, "seed": 3}',
            "--limit",
            "3",
            "--max_new_tokens",
            "4",
            "--batch_size",
            "2",
            "--output_dir",
            str(output),
        ]
    )
    assert code == 0
    assert {p.name for p in output.iterdir()} >= {
        "metrics.json",
        "predictions.jsonl",
        "config.yaml",
        "run_info.json",
    }
    metrics = json.loads((output / "metrics.json").read_text())
    assert metrics["num_examples"] == 3 and "regex/semantic_equivalence" in metrics
    assert len((output / "predictions.jsonl").read_text().splitlines()) == 3


@pytest.mark.parametrize(
    ("flags", "error", "message"),
    [
        (["--limit", "0"], ValueError, "limit must be a positive"),
        (["--dataset_kwargs", "{nope"], ValueError, "not valid JSON"),
        (["--dataset_kwargs", "[1]"], TypeError, "must be a JSON object"),
    ],
)
def test_cli_rejects_bad_options(tmp_path, flags, error, message):
    with pytest.raises(error, match=message):
        main(["--model", str(tmp_path), "--output_dir", str(tmp_path / "out"), *flags])


def test_a_tokenizer_without_pad_token_pads_with_eos_and_is_restored(tiny_llama3, mixed_rows):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama3)
    tokenizer.pad_token = None
    model = EchoModel(tokenizer, "x")
    generate_predictions(model, tokenizer, rows_to_dataset(mixed_rows[:2]), batch_size=2, max_new_tokens=2)
    assert tokenizer.pad_token is None
    padded = [ids for ids, mask in model.prompts if 0 in mask]
    assert padded and padded[0][0] == tokenizer.eos_token_id
