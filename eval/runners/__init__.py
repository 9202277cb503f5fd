"""Task runners: each evaluates any :class:`eval.protocol.EmbeddingModel` on one task and writes
``metrics.json``, ``predictions.jsonl`` and ``report.md`` (with PNG plots) into ``output_dir``.

Every runner has the form ``run_<task>(model, dataset, *, output_dir, batch_size=32, accelerator=None,
...) -> dict`` and, given an ``accelerate.Accelerator``, shards the examples across processes.
Start with :mod:`~eval.runners.retrieval`; :mod:`~eval.runners.common` holds what the runners share.
"""

from eval.runners.captioning import run_captioning
from eval.runners.retrieval import run_retrieval
from eval.runners.vqa import run_vqa
from eval.runners.zeroshot import run_zeroshot

__all__ = ["run_captioning", "run_retrieval", "run_vqa", "run_zeroshot"]
