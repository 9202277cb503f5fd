"""The three parts of VL-JEPA that turn inputs into vectors.

* :mod:`~vljepa.encoders.x_encoder`: the frozen vision backbone (any ``AutoModel`` vision tower or timm CNN)
  -> visual tokens ``[B, V, x_dim]``.
* :mod:`~vljepa.encoders.predictor`: the bidirectional predictor (visual tokens + query -> ``[B, E]``).
* :mod:`~vljepa.encoders.query_context`: frozen lower LM layers that read the query first (cached per query).
* :mod:`~vljepa.encoders.y_encoder`: the sentence-transformers target encoder + projection -> ``[B, E]``.

Start with ``predictor.py``: it is where the model's prediction is made.
"""
