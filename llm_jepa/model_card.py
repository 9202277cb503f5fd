"""Model card (``README.md``) for an LLM-JEPA fine-tune: base model, lambda, k, d, data and metrics.

The Trainer's ``push_to_hub`` uploads the output folder, this card included; rendering is offline and pure.
"""

from __future__ import annotations

from typing import Any

import yaml

from llm_jepa.modeling import SavedLLMJepaConfig

PAPER = "LLM-JEPA: Large Language Models Meet Joint Embedding Predictive Architectures (arXiv 2509.14252)"
_CARD_METRICS = (
    "train_loss", "loss", "lm_loss", "jepa_loss", "jepa_term_rate", "text_fallback_rate",
    "eval_loss", "eval_lm_loss", "eval_jepa_loss", "train_runtime", "epoch", "step",
)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def render_model_card(
    *,
    saved: SavedLLMJepaConfig,
    data_description: str,
    training_metrics: dict[str, Any] | None = None,
    task_metrics: dict[str, Any] | None = None,
    hub_model_id: str | None = None,
    training_args: dict[str, Any] | None = None,
) -> str:
    """Return the card's markdown with YAML front matter (``base_model``, ``library_name``, ``tags``)."""
    objective = saved.objective
    front = {
        "base_model": saved.base_model,
        "library_name": "peft" if saved.weights == "adapter" else "transformers",
        "tags": ["llm-jepa", "jepa", "text-generation"] + (["lora"] if saved.peft != "none" else []),
        "pipeline_tag": "text-generation",
    }
    name = hub_model_id or "LLM-JEPA fine-tune"
    lines = [
        "---", yaml.safe_dump(front, sort_keys=False).strip(), "---", "",
        f"# {name}", "",
        f"Fine-tuned from `{saved.base_model}`"
        + (f" (revision `{saved.base_model_revision}`)" if saved.base_model_revision else "")
        + f" with the LLM-JEPA objective ({PAPER}):", "",
        "    loss = gamma * L_LM + lambda * d(Pred(Enc(Text)), Enc(Code))", "",
        "| setting | value |", "|---|---|",
        f"| lambda (`jepa_loss_weight`) | {_fmt(objective.get('jepa_loss_weight'))} |",
        f"| gamma (`lm_loss_weight`) | {_fmt(objective.get('lm_loss_weight'))} |",
        f"| k (`num_pred_tokens`) | {_fmt(objective.get('num_pred_tokens'))} |",
        f"| d (`jepa_loss`) | {_fmt(objective.get('jepa_loss'))} |",
        f"| cost mode (`jepa_mode`) | {_fmt(objective.get('jepa_mode'))} |",
        f"| stop-gradient on target | {_fmt(objective.get('jepa_stop_gradient'))} |",
        f"| JEPA-term dropout | {_fmt(objective.get('jepa_dropout'))} |",
        f"| Text view | {_fmt(objective.get('jepa_text_view'))} |",
        f"| fine-tuning | {saved.peft} (saved as {saved.weights}) |",
        f"| data | {data_description or 'not recorded'} |",
    ]
    for key, value in (training_args or {}).items():
        lines.append(f"| {key} | {_fmt(value)} |")
    if training_metrics:
        lines += ["", "## Training metrics (last logged values)", "", "| metric | value |", "|---|---|"]
        lines += [f"| {k} | {_fmt(training_metrics[k])} |" for k in _CARD_METRICS if k in training_metrics]
    if task_metrics:
        lines += ["", "## Task metrics (`llm-jepa eval`)", "", "```json", _json(task_metrics), "```"]
    lines += [
        "", "## Use", "",
        "```python",
        "from llm_jepa.modeling import load_for_inference",
        "model, tokenizer = load_for_inference(\"PATH_OR_DOWNLOADED_FOLDER\")",
        "```", "",
        (f"The tokenizer carries the predictor tokens {saved.pred_tokens} used only during training; "
         "generation uses the chat template as usual."),
        "",
    ]
    return "\n".join(lines)


def _json(data: Any) -> str:
    import json

    return json.dumps(data, indent=2, default=str)[:4000]
