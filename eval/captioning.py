"""Caption metrics: CIDEr-D (COCO caption evaluation) and corpus BLEU-4.

Both take ``candidates: {example_id: caption}`` and ``references: {example_id: [caption, ...]}`` with
the same keys.

* CIDEr-D is the COCO caption evaluation's ``CiderScorer`` (package ``pycocoevalcap``, pure Python):
  TF-IDF weighted n-grams for n = 1..4 with document frequencies from the references of the
  evaluated set, clipped candidate counts, a Gaussian length penalty with sigma = 6, averaged over
  references and n, times 10. A perfect caption of a typical set scores well above 1.
* BLEU-4 is sacrebleu's corpus BLEU (4-gram, brevity penalty from the closest reference length, no
  smoothing, as the COCO evaluation), reported as a fraction in [0, 1] like COCO's ``Bleu_4``.

Tokenisation: the COCO evaluation runs the Stanford PTB tokenizer (Java). We do not require Java, so
:func:`tokenize_caption` approximates it: lower-case, punctuation removed, clitics split
(``"dog's"`` -> ``"dog 's"``, ``"don't"`` -> ``"do n't"``). Scores can differ slightly from the
official Java pipeline (e.g. on decimals or hyphenated words); compare models with this module.

Example::

    >>> refs = {1: ["a red circle", "a red round shape"], 2: ["a blue square"]}
    >>> round(cider({1: "a red circle", 2: "a blue square"}, refs), 3) > 0
    True
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Mapping, Sequence

from jepa_core.extras import missing_extra

try:
    from pycocoevalcap.cider.cider_scorer import CiderScorer
    from sacrebleu.metrics import BLEU
except ImportError as _err:
    raise missing_extra(_err.name or "sacrebleu", extra="eval", purpose="captioning metrics (CIDEr-D, BLEU-4)") from _err

CIDER_MAX_N = 4
CIDER_SIGMA = 6.0

_NOT_WORD = re.compile(r"[^\w'\s]|_")
_NEGATION = re.compile(r"n't\b")
_CLITIC = re.compile(r"(?<=\w)'(s|re|ve|ll|d|m)\b")
_CLITICS = frozenset({"'s", "'re", "'ve", "'ll", "'d", "'m", "n't"})


def tokenize_caption(text: str) -> str:
    """Lower-cased, punctuation-free, clitic-split tokens joined by single spaces; quotes are dropped."""
    text = text.lower().replace("\u2019", "'").replace("\u2018", "'")
    text = _NOT_WORD.sub(" ", text)
    text = _NEGATION.sub(" n't", text)
    text = _CLITIC.sub(r" '\1", text)
    tokens = (token if token in _CLITICS else token.strip("'") for token in text.split())
    return " ".join(token for token in tokens if token)


def _check_pairs(
    candidates: Mapping[Hashable, str], references: Mapping[Hashable, Sequence[str]]
) -> list[Hashable]:
    if not candidates:
        raise ValueError("candidates is empty: caption metrics need at least one example")
    missing = [key for key in candidates if key not in references]
    extra = [key for key in references if key not in candidates]
    if missing or extra:
        raise ValueError(
            "candidates and references must have the same example ids; "
            f"without references: {missing[:5]}, without a candidate: {extra[:5]}"
        )
    for key, caption in candidates.items():
        if not isinstance(caption, str):
            raise TypeError(f"candidates[{key!r}] must be one caption string, got {type(caption).__name__}")
        refs = references[key]
        if isinstance(refs, str) or not refs or not all(isinstance(ref, str) for ref in refs):
            raise TypeError(f"references[{key!r}] must be a non-empty list of caption strings, got {refs!r}")
    return list(candidates)


def cider_scores(
    candidates: Mapping[Hashable, str], references: Mapping[Hashable, Sequence[str]]
) -> dict[Hashable, float]:
    """Per-example CIDEr-D; document frequencies come from all examples' references together."""
    keys = _check_pairs(candidates, references)
    scorer = CiderScorer(n=CIDER_MAX_N, sigma=CIDER_SIGMA)
    for key in keys:
        scorer += (tokenize_caption(candidates[key]), [tokenize_caption(ref) for ref in references[key]])
    _, per_example = scorer.compute_score()
    return {key: float(score) for key, score in zip(keys, per_example)}


def cider(candidates: Mapping[Hashable, str], references: Mapping[Hashable, Sequence[str]]) -> float:
    """Corpus CIDEr-D: the mean of :func:`cider_scores` (x10 scale, as the COCO evaluation)."""
    scores = cider_scores(candidates, references)
    return sum(scores.values()) / len(scores)


def bleu4(candidates: Mapping[Hashable, str], references: Mapping[Hashable, Sequence[str]]) -> float:
    """Corpus BLEU-4 in [0, 1] on :func:`tokenize_caption` tokens (sacrebleu, no smoothing)."""
    keys = _check_pairs(candidates, references)
    hypotheses = [tokenize_caption(candidates[key]) for key in keys]
    tokenized_refs = [[tokenize_caption(ref) for ref in references[key]] for key in keys]
    # sacrebleu wants one stream per reference slot; None pads examples that have fewer references.
    num_streams = max(len(refs) for refs in tokenized_refs)
    streams = [[refs[i] if i < len(refs) else None for refs in tokenized_refs] for i in range(num_streams)]
    metric = BLEU(tokenize="none", smooth_method="none", max_ngram_order=4)
    return metric.corpus_score(hypotheses, streams).score / 100.0
