"""Each data adapter against a small fixture written here in exactly its upstream schema."""

from __future__ import annotations

import json
import sqlite3

import pytest

from eval.llm_tasks import sql_execution_match
from llm_jepa.data import BadRowError, available_sources, load_messages_dataset
from llm_jepa.data.schema import DEFAULT_SYSTEM_PROMPTS

COLUMNS = {"messages", "id", "task", "reference", "db_path", "regex_dialect"}


def write_lines(path, lines):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def chat(user, assistant, system=None):
    turns = [{"role": "system", "content": system}] if system else []
    return turns + [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]


# ---------------------------------------------------------------------------------------------- jsonl


def test_jsonl_generic_rows(tmp_path):
    file = write_lines(
        tmp_path / "data.jsonl",
        [
            json.dumps({"messages": chat("lines with dog", ".*dog.*", system="write a regex"), "id": "r1"}),
            "",  # blank lines are not rows
            json.dumps({"messages": chat("lines with a number", ".*[0-9].*"), "extra": 1}),
        ],
    )
    data = load_messages_dataset(f"jsonl:{file}")
    assert set(data.column_names) == COLUMNS
    assert data["id"] == ["r1", "data-3"]  # default id: file stem and line number
    assert data["task"] == ["generic", "generic"]
    assert data["reference"] == [".*dog.*", ".*[0-9].*"]
    assert [len(m) for m in data["messages"]] == [3, 2]


def test_jsonl_task_and_split_resolution(tmp_path):
    for split in ("train", "test"):
        write_lines(
            tmp_path / f"synth_{split}.jsonl",
            [json.dumps({"messages": chat(f"q {split}", f"step\n#### {i}")}) for i in range(3)],
        )
    data = load_messages_dataset(f"jsonl:{tmp_path}/synth_{{split}}.jsonl", split="test", task="gsm8k")
    assert data["messages"][0][0]["content"] == "q test"
    assert data["reference"] == ["0", "1", "2"]  # gsm8k references are the final answers
    write_lines(
        tmp_path / "folder" / "dev.jsonl", [json.dumps({"messages": chat("a", "b"), "task": "regex"})]
    )
    assert load_messages_dataset(f"jsonl:{tmp_path / 'folder'}", split="dev")["task"] == ["regex"]
    with pytest.raises(FileNotFoundError, match="train.jsonl"):
        load_messages_dataset(f"jsonl:{tmp_path / 'folder'}", split="train")
    with pytest.raises(ValueError, match="task must be one of"):
        load_messages_dataset(f"jsonl:{tmp_path / 'folder'}", split="dev", task="poetry")


@pytest.mark.parametrize("stem", ["train", "synth_train", "nl-rx-train"])
def test_a_file_named_after_a_split_is_swapped_for_the_requested_split(tmp_path, stem):
    test_stem = stem.replace("train", "test")
    write_lines(tmp_path / f"{stem}.jsonl", [json.dumps({"messages": chat("train q", "a")})])
    write_lines(tmp_path / f"{test_stem}.jsonl", [json.dumps({"messages": chat("test q", "a")})])
    data = load_messages_dataset(f"jsonl:{tmp_path / stem}.jsonl", split="test")
    assert data[0]["messages"][0]["content"] == "test q"  # never the training file
    assert load_messages_dataset(f"jsonl:{tmp_path / stem}.jsonl")[0]["messages"][0]["content"] == "train q"
    with pytest.raises(FileNotFoundError, match="holds the 'train' split but split 'dev'"):
        load_messages_dataset(f"jsonl:{tmp_path / stem}.jsonl", split="dev")


# ---------------------------------------------------------------------------------------------- gsm8k

GSM8K_RECORDS = [
    {
        "question": "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips "
        "in May. "
        "How many clips did Natalia sell altogether in April and May?",
        "answer": "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nNatalia sold 48+24 = <<48+24=72>>72 "
        "clips "
        "altogether in April and May.\n#### 72",
    },
    {
        "question": "A shop sells 1,250 pens a week. How many in 2 weeks?",
        "answer": "1,250 * 2 = <<1250*2=2500>>2,500\n#### 2,500",
    },
]


@pytest.mark.parametrize("layout", ["github-jsonl", "hub-parquet", "single-file"])
def test_gsm8k_layouts(tmp_path, layout):
    if layout == "github-jsonl":
        write_lines(tmp_path / "test.jsonl", [json.dumps(r) for r in GSM8K_RECORDS])
        source = f"gsm8k:{tmp_path}"
    elif layout == "hub-parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        (tmp_path / "main").mkdir()
        pq.write_table(pa.Table.from_pylist(GSM8K_RECORDS), tmp_path / "main" / "test-00000-of-00001.parquet")
        source = f"gsm8k:{tmp_path}"
    else:
        source = f"gsm8k:{write_lines(tmp_path / 'any.jsonl', [json.dumps(r) for r in GSM8K_RECORDS])}"
    data = load_messages_dataset(source, split="test")
    assert data["reference"] == ["72", "2500"]
    assert data["task"] == ["gsm8k", "gsm8k"]
    first = data[0]["messages"]
    assert [t["role"] for t in first] == ["system", "user", "assistant"]
    assert first[0]["content"] == DEFAULT_SYSTEM_PROMPTS["gsm8k"]
    assert first[1]["content"] == GSM8K_RECORDS[0]["question"]
    assert first[2]["content"].endswith("#### 72")


def test_gsm8k_without_system_turn(tmp_path):
    write_lines(tmp_path / "train.jsonl", [json.dumps(GSM8K_RECORDS[0])])
    data = load_messages_dataset(f"gsm8k:{tmp_path}", system_prompt="")
    assert [t["role"] for t in data[0]["messages"]] == ["user", "assistant"]


# ---------------------------------------------------------------------------------------------- spider


@pytest.fixture()
def spider_dir(tmp_path):
    """A Spider release in miniature: train_spider.json, dev.json and database/<db>/<db>.sqlite."""
    db = tmp_path / "database" / "concert_singer" / "concert_singer.sqlite"
    db.parent.mkdir(parents=True)
    with sqlite3.connect(db) as connection:
        connection.executescript(
            "CREATE TABLE singer (Singer_ID int PRIMARY KEY, Name text, Country text, Age int);"
            "INSERT INTO singer VALUES (1, 'Joe Sharp', 'Netherlands', 52),"
            " (2, 'Timbaland', 'United States', 32),"
            " (3, 'Justin Brown', 'France', 29);"
        )
    connection.close()

    def record(question, query):
        return {
            "db_id": "concert_singer",
            "query": query,
            "query_toks": query.split(),
            "query_toks_no_value": query.split(),
            "question": question,
            "question_toks": question.split(),
            "sql": {"select": [False, []], "from": {"table_units": [], "conds": []}},
        }

    train = [
        record("How many singers do we have?", "SELECT count(*) FROM singer"),
        record("What are the names of singers older than 30?", "SELECT Name FROM singer WHERE Age > 30"),
        {**record("Which singer is from Mars?", "SELECT Name FROM singer"), "db_id": "missing_db"},
    ]
    dev = [record("List every country.", "SELECT Country FROM singer")]
    (tmp_path / "train_spider.json").write_text(json.dumps(train, indent=2))
    (tmp_path / "dev.json").write_text(json.dumps(dev, indent=2))
    return tmp_path


def test_spider_rows_execute_on_their_database(spider_dir):
    data = load_messages_dataset(f"spider:{spider_dir}", split="dev")
    row = data[0]
    assert row["task"] == "sql" and row["reference"] == "SELECT Country FROM singer"
    user = row["messages"][1]["content"]
    assert "CREATE TABLE singer" in user and user.endswith("Question: List every country.")
    assert sql_execution_match("SELECT Country FROM singer ORDER BY Age", row["reference"], row["db_path"])
    assert not sql_execution_match("SELECT Name FROM singer", row["reference"], row["db_path"])


def test_spider_missing_database_is_a_bad_row(spider_dir):
    with pytest.raises(ValueError, match=r"train_spider.json:3.*database file not found"):
        load_messages_dataset(f"spider:{spider_dir}", split="train")
    data = load_messages_dataset(
        f"spider:{spider_dir}", split="train", on_bad_row="skip", include_schema=False
    )
    assert data["reference"] == ["SELECT count(*) FROM singer", "SELECT Name FROM singer WHERE Age > 30"]
    assert data[1]["messages"][1]["content"] == "What are the names of singers older than 30?"


def test_spider_needs_its_databases(spider_dir, tmp_path):
    with pytest.raises(FileNotFoundError, match="database_dir"):
        load_messages_dataset(f"spider:{spider_dir}", split="dev", database_dir=str(tmp_path / "nowhere"))
    with pytest.raises(ValueError, match="split must be one of"):
        load_messages_dataset(f"spider:{spider_dir}", split="holdout")


# ---------------------------------------------------------------------------------------------- NL-RX

NLRX_SRC = [
    "lines with the string 'dog' at least 2 times",
    "lines that contain only a number",
    "lines not having a vowel",
    "lines ending with a letter followed by a number",
    "lines with a capital letter before a vowel",
    "lines containing 3 or more lower-case letters",
]
NLRX_TARG = [
    ".*(dog){2,}.*",
    "[0-9]",
    "~(.*[AEIOUaeiou].*)",
    "(.*)([A-Za-z].*[0-9].*)",
    "([A-Z]).*([AEIOUaeiou]).*",
    "(.*[a-z].*){3,}",
]


def test_nlrx_split_files(tmp_path):
    write_lines(tmp_path / "src-train.txt", NLRX_SRC[:4])
    write_lines(tmp_path / "targ-train.txt", NLRX_TARG[:4])
    data = load_messages_dataset(f"nl-rx:{tmp_path}", split="train")
    assert data["reference"] == NLRX_TARG[:4]
    assert data["task"] == ["regex"] * 4
    assert [m[1]["content"] for m in data["messages"]] == NLRX_SRC[:4]
    assert data["regex_dialect"] == ["nl-rx"] * 4  # NL-RX declares its & / ~ operators


def test_regex_sources_declare_their_dialect(tmp_path):
    from llm_jepa.data import generate_regex_synth

    assert set(generate_regex_synth(4, seed=0)["regex_dialect"]) == {"standard"}
    assert set(generate_regex_synth(4, seed=0, operators="nl-rx")["regex_dialect"]) == {"nl-rx"}
    lines = [
        json.dumps({"messages": chat("digits", "[0-9]+"), "task": "regex"}),
        json.dumps({"messages": chat("not a", "~(a)"), "task": "regex", "regex_dialect": "nl-rx"}),
        json.dumps({"messages": chat("say hi", "hi")}),
    ]
    write_lines(tmp_path / "rx.jsonl", lines)
    data = load_messages_dataset(f"jsonl:{tmp_path / 'rx.jsonl'}", split="test")
    assert data["regex_dialect"] == ["standard", "nl-rx", ""]
    nlrx = load_messages_dataset(f"jsonl:{tmp_path / 'rx.jsonl'}", split="test", regex_dialect="nl-rx")
    assert nlrx["regex_dialect"] == ["nl-rx", "nl-rx", ""]
    bad = {"messages": chat("x", "x"), "task": "regex", "regex_dialect": "pcre"}
    write_lines(tmp_path / "bad.jsonl", [json.dumps(bad)])
    with pytest.raises(BadRowError, match="regex_dialect 'pcre'"):
        load_messages_dataset(f"jsonl:{tmp_path / 'bad.jsonl'}", split="test")


def test_nlrx_release_files_are_split_by_regex(tmp_path):
    write_lines(tmp_path / "src.txt", NLRX_SRC)
    write_lines(tmp_path / "targ.txt", NLRX_TARG)
    every = list(load_messages_dataset(f"nl-rx:{tmp_path}", split="all")["reference"])
    train = list(load_messages_dataset(f"nl-rx:{tmp_path}", split="train", test_fraction=0.5)["reference"])
    test = list(load_messages_dataset(f"nl-rx:{tmp_path}", split="test", test_fraction=0.5)["reference"])
    assert every == NLRX_TARG
    assert train and test and not set(train) & set(test)
    assert sorted(train + test) == sorted(NLRX_TARG)


def test_nlrx_files_must_be_parallel(tmp_path):
    write_lines(tmp_path / "src.txt", NLRX_SRC)
    write_lines(tmp_path / "targ.txt", NLRX_TARG[:-1])
    with pytest.raises(ValueError, match="parallel"):
        load_messages_dataset(f"nl-rx:{tmp_path}", split="all")


# ---------------------------------------------------------------------------------------------- registry


def test_registry_lists_every_source():
    assert set(available_sources()) == {
        "jsonl:PATH",
        "gsm8k:PATH",
        "spider:PATH",
        "nl-rx:PATH",
        "regex-synth",
        "gsm-symbolic",
    }


@pytest.mark.parametrize(
    ("source", "options", "error", "message"),
    [
        ("parquet:x", {}, ValueError, "unknown data source 'parquet:x'"),
        ("spider", {}, ValueError, "needs a path"),
        ("regex-synth:/tmp/x", {}, ValueError, "takes no path"),
        ("regex-synth", {"size": 3}, TypeError, "has no option.*size.*takes: n, seed"),
    ],
)
def test_registry_errors(source, options, error, message):
    with pytest.raises(error, match=message):
        load_messages_dataset(source, **options)
