"""Registration of the VL-JEPA models with ``transformers``' Auto classes.

``AutoConfig`` and ``AutoModel`` learn the ``vljepa`` and ``vljepa-dual-encoder`` model types when
:mod:`vljepa.modeling` / :mod:`vljepa.baseline` are imported (``from vljepa import VLJEPAModel`` does it), or
on :func:`register_auto_classes`. ``import vljepa`` alone does not: it imports neither torch nor transformers,
so that the command line answers ``--help`` at once.

    >>> import vljepa
    >>> vljepa.register_auto_classes()
    >>> from transformers import AutoModel
    >>> model = AutoModel.from_pretrained("runs/demo/vljepa/model", dtype="auto")   # doctest: +SKIP

The models are ``torch.nn.Module`` subclasses with their own ``from_pretrained`` (they keep frozen encoders out
of the saved weights and rebuild them from the hub ids in the config), not ``PreTrainedModel``: AutoModel
only needs the class to answer ``from_pretrained(path, config=..., **hub_kwargs)``, which they do. What
``PreTrainedModel`` adds (``device_map`` splitting across devices, quantisation, ``trust_remote_code``) does
not apply.
"""

from __future__ import annotations


def register_auto_class(config_class: type, model_class: type) -> None:
    """Register ``config_class`` (by its ``model_type``) with AutoConfig and ``model_class`` with AutoModel."""
    from transformers import AutoConfig, AutoModel

    AutoConfig.register(config_class.model_type, config_class, exist_ok=True)
    AutoModel.register(config_class, model_class, exist_ok=True)


def register_auto_classes() -> None:
    """Make ``AutoConfig`` / ``AutoModel.from_pretrained`` load saved VL-JEPA and dual-encoder folders."""
    import vljepa.baseline
    import vljepa.modeling

    del vljepa  # imported for their side effect: each module registers its classes at its end
