"""Text on demand: a Y-decoder from the shared embedding space to text, and selective decoding of streams.

* :mod:`~vljepa.decoding.decoder` (+ :mod:`~vljepa.decoding.decoder_lm`): ``YDecoder``, embedding -> text.
* :mod:`~vljepa.decoding.training`: training a Y-decoder (``vljepa train-decoder``).
* :mod:`~vljepa.decoding.selective`: decoding policies (uniform, Ward segments, embedding drift).
* :mod:`~vljepa.decoding.windows`: per-window inputs for stream embeddings (frame montages).
* :mod:`~vljepa.decoding.stream_scoring`: scoring policies on annotated streams (CIDEr vs decodes/s).
* :mod:`~vljepa.decoding.benchmark`: the selective-decoding benchmark (``vljepa bench-decoding``).
* :mod:`~vljepa.decoding.cli`: the ``train-decoder``, ``decode`` and ``bench-decoding`` subcommands.

Start with ``selective.py`` for the idea, ``decoder.py`` for the model.
"""
