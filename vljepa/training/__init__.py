"""Training VL-JEPA (and the dual-encoder baseline) with Accelerate; the only part of ``vljepa`` that knows it.

* :mod:`~vljepa.training.arguments`: the typed recipe (``VLJEPAModelArguments``, ``VLJEPATrainingArguments``).
* :mod:`~vljepa.training.trainer`: ``VLJEPATrainer``, the caption stage then the query stage, then evaluation.
* :mod:`~vljepa.training.data`: datasets -> batches (image decoding, caption choice, query text).
* :mod:`~vljepa.training.feature_cache`: frozen X-encoder features cached on disk, keyed by what made them.
* :mod:`~vljepa.training.checkpointing`: atomic checkpoints, rotation and exact resume.

Start with ``trainer.py``.
"""
