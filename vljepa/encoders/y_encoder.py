"""The Y-encoder: a sentence-transformers text encoder plus a linear projection into the shared space.

It embeds the *target* text (a caption or an answer). Trained at a small learning-rate multiplier (paper:
0.05) or frozen. Base embeddings of repeated texts (e.g. the 13 easy-VQA answers, or the thousands of VQAv2
candidate answers scored for every question batch) are memoised whenever the weights cannot change: always
for a frozen encoder, and in eval mode for a trained one (switching back to train mode clears the memo).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import torch
from sentence_transformers import SentenceTransformer
from torch import nn


class YEncoder(nn.Module):
    """Texts ``list[str]`` (length ``M``) -> embeddings ``[M, embedding_dim]`` (not normalised).

    Args:
        model_path: local folder of a sentence-transformers model.
        embedding_dim: width of the shared space (the output of the projection).
        frozen: freeze the sentence encoder (the projection always trains).
        memo_size: how many base embeddings to memoise (0 disables the memo).

    Example::

        >>> encoder = YEncoder(model_path=folder, embedding_dim=256)   # doctest: +SKIP
        >>> encoder(["a red circle", "yes"]).shape
        torch.Size([2, 256])
    """

    def __init__(
        self, *, model_path: str | Path, embedding_dim: int, frozen: bool = False, memo_size: int = 65536
    ) -> None:
        super().__init__()
        self.encoder = SentenceTransformer(str(model_path), device="cpu")
        self.frozen = frozen
        dim = self.encoder.get_embedding_dimension()
        if dim is None:
            raise ValueError(f"{model_path}: the sentence-transformers model does not report its embedding dimension")
        self.base_dim = int(dim)
        self.projection = nn.Linear(self.base_dim, embedding_dim)
        if frozen:
            self.encoder.requires_grad_(False)
            self.encoder.eval()
        else:
            # sentence-transformers pools the token embeddings itself; the backbone's own pooler (BERT's
            # `pooler.dense`) never receives a gradient, which DDP rejects as unused parameters.
            for name, parameter in self.encoder.named_parameters():
                if ".pooler." in f".{name}":
                    parameter.requires_grad_(False)
        self.memo_size = memo_size
        self._memo: OrderedDict[str, torch.Tensor] = OrderedDict()

    def train(self, mode: bool = True) -> YEncoder:
        super().train(mode)
        if self.frozen:
            self.encoder.eval()
        elif mode:
            self._memo.clear()  # a trainable encoder is about to change
        return self

    @property
    def memoising(self) -> bool:
        return self.memo_size > 0 and (self.frozen or not self.training)

    @property
    def device(self) -> torch.device:
        return self.projection.weight.device

    def _run_encoder(self, texts: list[str]) -> torch.Tensor:
        features = self.encoder.preprocess(texts)
        features = {k: v.to(self.device) if isinstance(v, torch.Tensor) else v for k, v in features.items()}
        return self.encoder(features)["sentence_embedding"]

    def base_embeddings(self, texts: Sequence[str]) -> torch.Tensor:
        """``[M, base_dim]`` sentence-encoder embeddings; each distinct text is encoded once."""
        texts = list(texts)
        unique = list(dict.fromkeys(texts))
        if self.memoising:
            missing = [text for text in unique if text not in self._memo]
            if missing:
                with torch.no_grad():
                    encoded = self._run_encoder(missing).float()
                self._memo.update(zip(missing, encoded))
            rows = {}
            for text in unique:
                self._memo.move_to_end(text)
                rows[text] = self._memo[text]
            while len(self._memo) > self.memo_size:
                self._memo.popitem(last=False)
            table = torch.stack([rows[text].to(self.device) for text in unique])
        elif self.frozen:
            with torch.no_grad():
                table = self._run_encoder(unique).float()
        else:
            table = self._run_encoder(unique)
        index = {text: i for i, text in enumerate(unique)}
        return table[torch.tensor([index[text] for text in texts], device=table.device)]

    def forward(self, texts: Sequence[str]) -> torch.Tensor:
        if len(texts) == 0:
            raise ValueError("YEncoder got no texts")
        base = self.base_embeddings(texts)
        return self.projection(base.to(self.projection.weight.dtype))
