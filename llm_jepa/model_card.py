"""Model card data for an LLM-JEPA fine-tune: lambda, k, d and the other objective settings, the data, the
training and evaluation metrics. Rendering is the shared :func:`jepa_core.model_card.render_model_card`; the
Trainer's ``push_to_hub`` (or ``llm-jepa push``) uploads the ``README.md`` written from it.

>>> info = llm_jepa_card_info(saved=saved, data_description="regex-synth", training_metrics={},
...                           recipe=None)   # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from jepa_core.model_card import DEFAULT_INTENDED_USE, DEFAULT_LIMITATIONS, BaseModelRef, ModelCardInfo
from llm_jepa.loading import SavedLLMJepaConfig

PAPER = "LLM-JEPA (arXiv 2509.14252)"
# Objective settings shown in the card, with the paper's symbol.
_OBJECTIVE_ROWS = {
    "jepa_loss_weight": "lambda (jepa_loss_weight)",
    "lm_loss_weight": "gamma (lm_loss_weight)",
    "num_pred_tokens": "k (num_pred_tokens)",
    "jepa_loss": "d (jepa_loss)",
    "jepa_mode": "cost mode (jepa_mode)",
    "jepa_stop_gradient": "stop-gradient on Enc(Code)",
    "jepa_dropout": "JEPA-term dropout",
    "jepa_text_view": "Text view",
}
# Last logged training values worth a line.
_TRAINING_METRICS = ("train_loss", "lm_loss", "jepa_loss", "jepa_term_rate", "text_fallback_rate",
                     "train_runtime", "epoch", "step")
_EVAL_METRICS = ("eval_loss", "eval_lm_loss", "eval_jepa_loss")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def llm_jepa_card_info(
    *,
    saved: SavedLLMJepaConfig,
    data_description: str,
    training_metrics: dict[str, Any],
    recipe: str | dict[str, Any] | None,
    task_metrics: dict[str, Any] | None = None,
    training_args: dict[str, Any] | None = None,
    model_name: str = "llm-jepa-model",
    repo_id: str | None = None,
    dataset: str | None = None,
) -> ModelCardInfo:
    """Card data (``jepa_core.model_card.ModelCardInfo``) for a trained LLM-JEPA output folder.

    Args:
        saved: what ``llm_jepa_config.json`` records (base model, k, objective, fine-tuning method).
        data_description: one line naming the training data (source, split, size).
        training_metrics: last logged values (``lm_loss``, ``jepa_loss``, ``eval_loss``, ...).
        recipe: the resolved config (``config.yaml`` text or mapping).
        task_metrics: ``metrics.json`` of ``llm-jepa eval`` when it exists (numbers only are shown).
        training_args: a few trainer settings (learning rate, epochs, batch size, seed).
    """
    summary: dict[str, Any] = {"objective": f"{PAPER}: gamma * L_LM + lambda * d(Pred(Enc(Text)), Enc(Code))"}
    summary.update({label: saved.objective[key] for key, label in _OBJECTIVE_ROWS.items() if key in saved.objective})
    summary["fine-tuning"] = f"{saved.peft} (saved as {saved.weights})"
    summary["predictor tokens"] = ", ".join(saved.pred_tokens) or "none (k = 0: identity predictor)"
    summary["data"] = data_description or "not recorded"
    summary.update(training_args or {})
    summary.update({f"final {k}": training_metrics[k] for k in _TRAINING_METRICS if _is_number(training_metrics.get(k))})

    metrics = {k: float(training_metrics[k]) for k in _EVAL_METRICS if _is_number(training_metrics.get(k))}
    metrics.update({k: float(v) for k, v in (task_metrics or {}).items() if _is_number(v)})
    has_task_metrics = bool(task_metrics) and dataset is not None
    tags = ["llm-jepa", "text-generation"] + (["lora", "peft"] if saved.peft != "none" else [])
    target = repo_id or "PATH_TO_THIS_FOLDER"
    load_code = (
        "from huggingface_hub import snapshot_download\n"
        "from llm_jepa.loading import load_for_inference  # pip install jepa-hf\n\n"
        f'model, tokenizer = load_for_inference(snapshot_download("{target}"))'
        if repo_id else
        f'from llm_jepa.loading import load_for_inference\n\nmodel, tokenizer = load_for_inference("{target}")'
    )
    return ModelCardInfo(
        model_name=model_name,
        intended_use=DEFAULT_INTENDED_USE["llm-jepa"]
        + f" The tokenizer carries the predictor tokens {saved.pred_tokens or '[]'}, used only in training.",
        limitations=DEFAULT_LIMITATIONS,
        base_models=[BaseModelRef(id=saved.base_model, revision=saved.base_model_revision)],
        datasets=[dataset] if dataset else [],
        recipe=recipe,
        metrics=metrics,
        eval_task="text-generation" if has_task_metrics else None,
        eval_dataset=dataset if has_task_metrics else None,
        training_summary=summary,
        tags=tags,
        pipeline_tag="text-generation",
        repo_id=repo_id,
        load_code=load_code,
    )
