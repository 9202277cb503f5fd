"""Views of chat examples: labels, Text / Code boundaries and the token-prefix check, for both templates."""

import logging

import pytest
from datasets import Dataset
from transformers import AutoTokenizer

from llm_jepa.views import ViewError, ViewTokenizer, pred_token_strings, tokenize_views_dataset

PLAIN = [{"role": "user", "content": "write a regex for dog"}, {"role": "assistant", "content": "(dog){2,}"}]
WITH_SYSTEM = [
    {"role": "system", "content": "the answer is 42"},
    {"role": "user", "content": "what color is the shape?"},
    {"role": "assistant", "content": "the shape is green"},
]


@pytest.fixture
def tokenizer(tiny_llm):
    return AutoTokenizer.from_pretrained(tiny_llm)


@pytest.mark.parametrize("messages", [PLAIN, WITH_SYSTEM], ids=["user-only", "with-system"])
def test_labels_cover_exactly_the_assistant_turn(tokenizer, messages):
    views = ViewTokenizer(tokenizer, max_length=256)(messages)
    labelled = [tok for tok in views.labels if tok != -100]
    first = views.labels.index(labelled[0])
    assert views.labels[first:] == views.input_ids[first:]  # a contiguous tail: answer + end of turn
    assert all(label == -100 for label in views.labels[:first])
    decoded = tokenizer.decode(labelled)
    assert decoded.startswith(messages[-1]["content"])
    assert tokenizer.eos_token in decoded  # the model learns to stop
    assert messages[-2]["content"] not in decoded


@pytest.mark.parametrize("messages", [PLAIN, WITH_SYSTEM], ids=["user-only", "with-system"])
def test_views_end_at_their_last_content_token(tokenizer, messages):
    views = ViewTokenizer(tokenizer, max_length=256)(messages)
    assert tokenizer.decode(views.text_input_ids).endswith(messages[-2]["content"])
    assert tokenizer.decode(views.code_input_ids).endswith(messages[-1]["content"])
    assert messages[-2]["content"] not in tokenizer.decode(views.code_input_ids)


def test_prompt_view_is_a_prefix_of_the_conversation(tokenizer):
    for messages in (PLAIN, WITH_SYSTEM):
        views = ViewTokenizer(tokenizer, text_view="prompt", max_length=256)(messages)
        assert views.text_prefix_length == len(views.text_input_ids)
        assert views.input_ids[: views.text_prefix_length] == views.text_input_ids


def test_user_view_with_system_turn_is_not_a_prefix(tokenizer):
    views = ViewTokenizer(tokenizer, text_view="user", max_length=256)(WITH_SYSTEM)
    assert views.text_prefix_length == 0
    assert "the answer is 42" not in tokenizer.decode(views.text_input_ids)
    assert ViewTokenizer(tokenizer, text_view="user", max_length=256)(PLAIN).text_prefix_length > 0


@pytest.mark.parametrize(
    "messages, match",
    [
        ([{"role": "user", "content": "hi"}], "expected roles"),
        ([{"role": "assistant", "content": "a"}, {"role": "user", "content": "b"}], "expected roles"),
        ([{"role": "user", "content": "  "}, {"role": "assistant", "content": "x"}], "user content is empty"),
        ([{"role": "user"}, {"role": "assistant", "content": "x"}], r"messages\[0\]"),
        ("not a list", "non-empty list"),
    ],
)
def test_bad_examples_raise_naming_the_row(tokenizer, messages, match):
    with pytest.raises(ViewError, match=match) as info:
        ViewTokenizer(tokenizer)(messages, row="train row 7 (id='x7')")
    assert "train row 7" in str(info.value)


def test_dataset_drops_overlong_rows_with_a_warning(tokenizer, caplog):
    long = [{"role": "user", "content": "dog " * 200}, {"role": "assistant", "content": "dog"}]
    data = Dataset.from_list([{"id": "short", "messages": PLAIN}, {"id": "long", "messages": long}])
    with caplog.at_level(logging.WARNING):
        out = tokenize_views_dataset(data, ViewTokenizer(tokenizer, max_length=64))
    assert len(out) == 1
    assert "Dropped 1 of 2" in caplog.text and "long" in caplog.text
    assert set(out.column_names) == {"input_ids", "labels", "text_input_ids", "code_input_ids", "text_prefix_length"}


def test_dataset_errors_name_missing_messages_and_all_dropped(tokenizer):
    with pytest.raises(ValueError, match="no 'messages' column"):
        tokenize_views_dataset(Dataset.from_list([{"text": "a"}]), ViewTokenizer(tokenizer))
    with pytest.raises(ValueError, match="raise max_length"):
        tokenize_views_dataset(Dataset.from_list([{"messages": PLAIN}]), ViewTokenizer(tokenizer, max_length=8))


def test_pred_token_strings():
    assert pred_token_strings(0) == []
    assert pred_token_strings(3) == ["[PRED_1]", "[PRED_2]", "[PRED_3]"]
