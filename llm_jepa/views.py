"""Two views of one chat example, tokenised: the conversation (for L_LM), the Text view and the Code view.

For ``messages = [system?, user, assistant]``:

* conversation: the whole chat rendered with the tokenizer's chat template; ``labels`` keep the assistant
  response tokens (its content and the template's end-of-turn tokens) and are -100 elsewhere;
* Text view: the turns before the assistant (``jepa_text_view="prompt"``) or the user turn alone
  (``"user"``), rendered with the chat template and cut after the last token of the user content;
* Code view: the assistant turn alone, rendered with the chat template and cut after the last content token.

Enc(view) is the last-layer hidden state at the last token of the cut view, so its position is simply the
last attended position. Positions come from the rendered text and the tokenizer's offset mapping (no
per-model token offsets). ``text_prefix_length`` records whether the cut Text view is a token prefix of the
conversation (then packed mode reads Enc(Text) inside the conversation); 0 means it is not and packed mode
falls back to a separate Text block.

Example::

    >>> views = ViewTokenizer(tokenizer, text_view="prompt", max_length=256)
    >>> ex = views(messages)                                 # doctest: +SKIP
    >>> ex.text_prefix_length == len(ex.text_input_ids)      # doctest: +SKIP
    True
"""

from __future__ import annotations

import bisect
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

logger = logging.getLogger(__name__)

PRED_TOKEN_TEMPLATE = "[PRED_{index}]"
VIEW_COLUMNS = ("input_ids", "labels", "text_input_ids", "code_input_ids", "text_prefix_length")


def pred_token_strings(num_pred_tokens: int) -> list[str]:
    """The special predictor tokens ``[PRED_1] .. [PRED_k]`` appended to the Text view."""
    return [PRED_TOKEN_TEMPLATE.format(index=i) for i in range(1, num_pred_tokens + 1)]


class ViewError(ValueError):
    """A chat example that cannot be turned into views; the message names the row and what to fix."""


@dataclass
class TokenizedViews:
    """Token ids of one example's views (Python lists: this is what a ``datasets`` column holds)."""

    input_ids: list[int]
    labels: list[int]
    text_input_ids: list[int]
    code_input_ids: list[int]
    text_prefix_length: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _content_span(rendered: str, content: str, what: str, row: str) -> tuple[int, int]:
    """Character span of ``content`` (whitespace-trimmed, last occurrence) inside ``rendered``."""
    needle = content.strip()
    if not needle:
        raise ViewError(f"{row}: the {what} content is empty; every example needs a non-empty user and assistant")
    start = rendered.rfind(needle)
    if start < 0:
        raise ViewError(
            f"{row}: the chat template changed the {what} content so it cannot be found in the rendered text "
            f"(rendered: {rendered[:200]!r}...). Use a template that renders message content verbatim."
        )
    return start, start + len(needle)


def _token_at_char(offsets: Sequence[tuple[int, int]], char_index: int) -> int:
    """Index of the token whose character span covers ``char_index``."""
    ends = [end for _, end in offsets]
    index = bisect.bisect_right(ends, char_index)
    if index >= len(offsets) or offsets[index][0] > char_index:
        raise ViewError(f"no token covers character {char_index} (offsets do not cover the rendered text)")
    return index


class ViewTokenizer:
    """Render and tokenise the conversation, Text and Code views of chat examples.

    Args:
        tokenizer: a fast Hugging Face tokenizer with a chat template.
        text_view: ``"prompt"`` (all turns before the assistant) or ``"user"`` (the user turn alone).
        max_length: conversations longer than this (in tokens) are rejected (``None`` returned).
    """

    def __init__(self, tokenizer: Any, *, text_view: str = "prompt", max_length: int = 512) -> None:
        if not getattr(tokenizer, "is_fast", False):
            raise ValueError(
                f"{type(tokenizer).__name__} is not a fast tokenizer; LLM-JEPA views need offset mappings "
                "(load the tokenizer with use_fast=True)"
            )
        if not getattr(tokenizer, "chat_template", None):
            raise ValueError("the tokenizer has no chat template; LLM-JEPA renders its views with one")
        if text_view not in ("prompt", "user"):
            raise ValueError(f"text_view must be 'prompt' or 'user', got {text_view!r}")
        self.tokenizer = tokenizer
        self.text_view = text_view
        self.max_length = max_length

    def _render(self, messages: list[dict[str, str]], row: str, what: str) -> str:
        try:
            return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=False)
        except Exception as err:  # jinja2 raises its own TemplateError subclasses; name the view
            raise ViewError(f"{row}: the chat template cannot render the {what} ({err})") from err

    def _encode(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        encoded = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        return list(encoded["input_ids"]), [tuple(span) for span in encoded["offset_mapping"]]

    @staticmethod
    def split_messages(messages: Any, row: str) -> tuple[list[dict], dict, dict]:
        """Check the ``[system?, user, assistant]`` shape; return (prompt turns, user turn, assistant turn)."""
        if not isinstance(messages, list) or not messages:
            raise ViewError(f"{row}: 'messages' must be a non-empty list of {{'role', 'content'}} dicts")
        for i, message in enumerate(messages):
            if not isinstance(message, dict) or not isinstance(message.get("content"), str) or "role" not in message:
                raise ViewError(f"{row}: messages[{i}] must be a dict with string 'role' and 'content'")
        roles = [m["role"] for m in messages]
        if roles not in (["user", "assistant"], ["system", "user", "assistant"]):
            raise ViewError(
                f"{row}: expected roles [system?, user, assistant] (one Text turn, one Code turn), got {roles}"
            )
        return [dict(m) for m in messages[:-1]], dict(messages[-2]), dict(messages[-1])

    def __call__(self, messages: Any, row: str = "example") -> TokenizedViews | None:
        """Tokenise one example; ``None`` when the conversation is longer than ``max_length``."""
        prompt_turns, user_turn, assistant_turn = self.split_messages(messages, row)
        conversation = self._render(prompt_turns + [assistant_turn], row, "conversation")
        input_ids, offsets = self._encode(conversation)
        if len(input_ids) > self.max_length:
            return None
        answer_start, _ = _content_span(conversation, assistant_turn["content"], "assistant", row)
        # Every token that ends after the answer starts is a target: the answer and the end-of-turn tokens.
        labels = [tok if end > answer_start else -100 for tok, (_, end) in zip(input_ids, offsets)]

        text_turns = prompt_turns if self.text_view == "prompt" else [user_turn]
        text_rendered = self._render(text_turns, row, "Text view")
        text_ids, text_offsets = self._encode(text_rendered)
        _, user_end = _content_span(text_rendered, user_turn["content"], "user", row)
        text_input_ids = text_ids[: _token_at_char(text_offsets, user_end - 1) + 1]

        code_rendered = self._render([assistant_turn], row, "Code view (the assistant turn alone)")
        code_ids, code_offsets = self._encode(code_rendered)
        _, code_end = _content_span(code_rendered, assistant_turn["content"], "assistant", row)
        code_input_ids = code_ids[: _token_at_char(code_offsets, code_end - 1) + 1]

        n_text = len(text_input_ids)
        is_prefix = input_ids[:n_text] == text_input_ids and labels[n_text - 1] == -100
        return TokenizedViews(
            input_ids=input_ids,
            labels=labels,
            text_input_ids=text_input_ids,
            code_input_ids=code_input_ids,
            text_prefix_length=n_text if is_prefix else 0,
        )


def tokenize_views_dataset(dataset: Any, views: ViewTokenizer, *, split_name: str = "train") -> Any:
    """Map a ``datasets.Dataset`` with a ``messages`` column to the view columns of :class:`TokenizedViews`.

    Conversations over ``max_length`` are dropped with a warning naming how many and the first ids. Examples
    whose Text view is not a token prefix of the conversation are counted and logged (packed mode gives
    them a separate Text block).
    """
    if "messages" not in dataset.column_names:
        raise ValueError(
            f"{split_name} dataset has no 'messages' column (columns: {dataset.column_names}); "
            "llm_jepa.data.load_messages_dataset returns one"
        )
    has_id = "id" in dataset.column_names

    def convert(example: dict[str, Any], index: int) -> dict[str, Any]:
        row = f"{split_name} row {index}" + (f" (id={example['id']!r})" if has_id else "")
        result = views(example["messages"], row=row)
        if result is None:
            return {"keep": False, **{c: [] if c != "text_prefix_length" else 0 for c in VIEW_COLUMNS}}
        return {"keep": True, **result.as_dict()}

    mapped = dataset.map(convert, with_indices=True, desc=f"LLM-JEPA views ({split_name})")
    keep = mapped["keep"]
    dropped = [i for i, flag in enumerate(keep) if not flag]
    if len(dropped) == len(keep):
        raise ValueError(
            f"every {split_name} example is longer than max_length={views.max_length} tokens; raise max_length"
        )
    if dropped:
        ids = [mapped[i]["id"] if has_id else i for i in dropped[:5]]
        logger.warning(
            "Dropped %d of %d %s examples longer than max_length=%d tokens (first: %s); raise max_length to "
            "keep them.", len(dropped), len(keep), split_name, views.max_length, ids,
        )
        mapped = mapped.filter(lambda flag: flag, input_columns="keep")
    fallbacks = sum(1 for n in mapped["text_prefix_length"] if n == 0)
    if fallbacks:
        logger.warning(
            "%d of %d %s examples: the Text view is not a token prefix of the conversation (template or "
            "tokenisation differs); packed mode encodes their Text view as a separate block.",
            fallbacks, len(mapped), split_name,
        )
    return mapped.remove_columns([c for c in mapped.column_names if c not in VIEW_COLUMNS])

