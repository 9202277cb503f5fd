"""Evaluation: pure metric functions and task runners that score any model through one protocol.

* Metrics (arrays in, numbers out; no model code): :mod:`eval.retrieval` (Recall@K),
  :mod:`eval.vqa` (VQAv2 accuracy), :mod:`eval.captioning` (CIDEr-D, BLEU-4), :mod:`eval.zeroshot`,
  :mod:`eval.llm_tasks` (LLM-JEPA tasks: exact match, regex equivalence, SQL execution, GSM8K answers).
* The model interface: :mod:`eval.protocol` (start here).
* Runners writing ``metrics.json``, ``predictions.jsonl`` and ``report.md``: :mod:`eval.runners`, with
  :mod:`eval.artifacts` (the files), :mod:`eval.plots` (the figures), :mod:`eval.distributed` (sharding).
* Model comparison tables: :mod:`eval.report`. A tiny deterministic test model: :mod:`eval.testing`.
"""

from __future__ import annotations

import jepa_core  # noqa: F401  (installs the torchvision import hook; see jepa_core's docstring)
