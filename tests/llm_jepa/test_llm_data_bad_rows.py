"""Bad rows are reported by file, line and reason under both policies, never dropped silently."""

from __future__ import annotations

import json

import pytest

from llm_jepa.data import BadRowError, load_messages_dataset, load_messages_with_report
from llm_jepa.data.schema import REPORT_PREVIEW_ROWS

GOOD = {
    "messages": [
        {"role": "user", "content": "lines with a vowel"},
        {"role": "assistant", "content": ".*[AEIOUaeiou].*"},
    ]
}


def turns(*pairs):
    return {"messages": [{"role": role, "content": content} for role, content in pairs]}


BAD_LINES = {  # reason fragment: the JSONL line
    "malformed JSON": '{"messages": [',
    "expected a JSON object": "[1, 2]",
    "no 'messages' key": json.dumps({"id": "x"}),
    "missing the user turn": json.dumps(turns(("system", "s"), ("assistant", "a"))),
    "missing the assistant turn": json.dumps(turns(("user", "u"))),
    "empty user turn": json.dumps(turns(("user", "   "), ("assistant", "a"))),
    "empty assistant turn": json.dumps(turns(("user", "u"), ("assistant", ""))),
    "role 'bot'": json.dumps(turns(("user", "u"), ("bot", "a"))),
    "in that order": json.dumps(turns(("assistant", "a"), ("user", "u"))),
    "exactly the keys": json.dumps(
        {"messages": [{"role": "user", "text": "u"}, {"role": "assistant", "content": "a"}]}
    ),
    "non-empty list": json.dumps({"messages": "hello"}),
    "duplicate id 'dup'": json.dumps({**GOOD, "id": "dup"}),
}


@pytest.fixture()
def messy_file(tmp_path):
    lines = [json.dumps({**GOOD, "id": "dup"})]  # line 1 is good (and owns the id "dup")
    lines += list(BAD_LINES.values())  # lines 2 .. 13
    lines.append(json.dumps({**GOOD, "id": "last"}))  # line 14 is good
    path = tmp_path / "messy.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize(("reason", "line"), [(reason, index + 2) for index, reason in enumerate(BAD_LINES)])
def test_error_policy_names_file_line_and_reason(messy_file, reason, line):
    with pytest.raises(BadRowError) as raised:
        load_messages_dataset(f"jsonl:{messy_file}")
    message = str(raised.value)
    assert f"{len(BAD_LINES)} of {len(BAD_LINES) + 2} rows" in message
    assert "on_bad_row='skip'" in message
    if line - 2 >= REPORT_PREVIEW_ROWS:  # the message lists the first rows and counts the others
        assert f"... and {len(BAD_LINES) - REPORT_PREVIEW_ROWS} more" in message
        return
    entry = next(row for row in message.splitlines() if f"{messy_file}:{line}" in row)
    assert reason in entry


def test_skip_policy_keeps_good_rows_and_reports_the_rest(messy_file, tmp_path, caplog):
    report_path = tmp_path / "reports" / "bad_rows.json"
    with caplog.at_level("WARNING"):
        data, report = load_messages_with_report(
            f"jsonl:{messy_file}", on_bad_row="skip", bad_row_report=report_path
        )
    assert list(data["id"]) == ["dup", "last"]
    assert report.count == len(BAD_LINES) and report.total_rows == len(BAD_LINES) + 2
    assert [row.origin.line for row in report.bad_rows] == list(range(2, len(BAD_LINES) + 2))
    for row, reason in zip(report.bad_rows, BAD_LINES):
        assert reason in row.reason, (row, reason)
    assert "12 of 14 rows" in caplog.text and "... and 2 more" in caplog.text  # first N in the log
    written = json.loads(report_path.read_text())
    assert written["count"] == len(BAD_LINES)
    assert [row["line"] for row in written["bad_rows"]] == list(range(2, len(BAD_LINES) + 2))
    assert all(row["file"] == str(messy_file) and row["reason"] for row in written["bad_rows"])


def test_all_rows_bad_is_an_error_even_when_skipping(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text("{oops\n")
    with pytest.raises(ValueError, match="no usable rows"):
        load_messages_dataset(f"jsonl:{path}", on_bad_row="skip")
    with pytest.raises(ValueError, match="on_bad_row must be one of"):
        load_messages_dataset(f"jsonl:{path}", on_bad_row="ignore")


@pytest.mark.parametrize("policy", ["error", "skip"])
def test_over_long_rows_after_tokenisation(tmp_path, tiny_llama3, policy):
    long_row = turns(("user", "dog " * 200), ("assistant", ".*dog.*"))
    path = tmp_path / "long.jsonl"
    path.write_text(json.dumps(GOOD) + "\n" + json.dumps(long_row) + "\n")
    options = {"tokenizer": str(tiny_llama3), "max_length": 64, "on_bad_row": policy}
    if policy == "error":
        with pytest.raises(
            BadRowError,
            match=r"long.jsonl:2 \(id long-2\): \d+ tokens after the chat template, over max_length=64",
        ):
            load_messages_dataset(f"jsonl:{path}", **options)
    else:
        data, report = load_messages_with_report(f"jsonl:{path}", **options)
        assert len(data) == 1 and report.bad_rows[0].origin.line == 2
    with pytest.raises(ValueError, match="both a tokenizer and max_length"):
        load_messages_dataset(f"jsonl:{path}", tokenizer=str(tiny_llama3))


def test_bad_gsm8k_and_nlrx_rows_name_their_lines(tmp_path):
    gsm = tmp_path / "gsm.jsonl"
    gsm.write_text(
        json.dumps({"question": "q", "answer": "no marker"})
        + "\n"
        + json.dumps({"question": "q2"})
        + "\n"
        + json.dumps({"question": "q3", "answer": "3\n#### 3"})
        + "\n"
    )
    data, report = load_messages_with_report(f"gsm8k:{gsm}", on_bad_row="skip")
    assert len(data) == 1
    assert [(r.origin.line, r.reason) for r in report.bad_rows] == [
        (1, "answer has no '#### <final answer>' line"),
        (2, "needs string fields 'question' and 'answer'"),
    ]
    (tmp_path / "src.txt").write_text("lines with a number\n\nlines with dog\n")
    (tmp_path / "targ.txt").write_text(".*[0-9].*\n.*a.*\n\n")
    with pytest.raises(BadRowError) as raised:
        load_messages_dataset(f"nl-rx:{tmp_path}", split="all")
    assert "src.txt + targ.txt:2 (id nl-rx-" in str(raised.value) and "empty description" in str(raised.value)
    assert "src.txt + targ.txt:3" in str(raised.value) and "empty regex" in str(raised.value)
