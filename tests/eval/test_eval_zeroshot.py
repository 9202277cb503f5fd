"""Zero-shot classification: prompt-template averaging and top-k accuracy."""

from __future__ import annotations

import math

import pytest
import torch

from eval.zeroshot import (
    average_template_embeddings,
    class_embeddings,
    class_scores,
    fill_templates,
    label_ranks,
    topk_accuracy,
)


def test_topk_accuracy_by_hand():
    scores = torch.tensor(
        [
            [0.9, 0.5, 0.1, 0.0],  # label 0: rank 0
            [0.9, 0.5, 0.1, 0.0],  # label 2: rank 2
            [0.1, 0.2, 0.3, 0.4],  # label 0: rank 3
            [0.5, 0.5, 0.1, 0.0],  # label 1: tied with class 0 -> ties count against the model -> rank 1
        ]
    )
    labels = [0, 2, 0, 1]
    assert label_ranks(scores, labels).tolist() == [0, 2, 3, 1]
    assert topk_accuracy(scores, labels, ks=(1, 2, 3, 5)) == {
        "top1": 0.25,
        "top2": 0.5,
        "top3": 0.75,
        "top5": 1.0,
    }


def test_a_collapsed_model_scores_zero_top1():
    assert topk_accuracy(torch.zeros(3, 10), [0, 4, 9], ks=(1, 5))["top1"] == 0.0


def test_topk_accuracy_rejects_bad_labels():
    with pytest.raises(ValueError, match="label 4 of example 0"):
        topk_accuracy(torch.zeros(1, 4), [4])
    with pytest.raises(ValueError, match="len\\(labels\\)"):
        topk_accuracy(torch.zeros(2, 4), [1])


def test_templates_are_normalised_then_averaged_then_renormalised():
    # Class 0: prompts [10, 0] and [0, 1] -> unit vectors averaged -> [1, 1] / sqrt(2), whatever the norms.
    # Class 1: prompts [0, 3] and [0, 5] -> [0, 1].
    prompts = torch.tensor([[10.0, 0.0], [0.0, 1.0], [0.0, 3.0], [0.0, 5.0]])
    classes = average_template_embeddings(prompts, num_classes=2)
    half = 1 / math.sqrt(2)
    assert torch.allclose(classes, torch.tensor([[half, half], [0.0, 1.0]]))


def test_class_embeddings_embed_every_prompt_in_class_major_order():
    seen: list[str] = []

    def embed_texts(texts, *, batch_size=32):
        seen.extend(texts)
        return torch.tensor([[float(len(text)), 1.0] for text in texts])

    out = class_embeddings(embed_texts, ["cat", "dog"], ["a {}", "the {} here"])
    assert seen == ["a cat", "the cat here", "a dog", "the dog here"]
    assert out.shape == (2, 2)
    assert torch.allclose(out.norm(dim=-1), torch.ones(2))


@pytest.mark.parametrize(
    ("names", "templates", "message"),
    [
        ([], ["a {}"], "class_names is empty"),
        (["cat"], [], "templates is empty"),
        (["cat"], ["a photo"], "exactly one"),
    ],
)
def test_fill_templates_validates(names, templates, message):
    with pytest.raises(ValueError, match=message):
        fill_templates(names, templates)


def test_class_scores_are_cosines():
    scores = class_scores(torch.tensor([[2.0, 0.0], [1.0, 1.0]]), torch.tensor([[1.0, 0.0], [0.0, 3.0]]))
    half = 1 / math.sqrt(2)
    assert torch.allclose(scores, torch.tensor([[1.0, 0.0], [half, half]]))
