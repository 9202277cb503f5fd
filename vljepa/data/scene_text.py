"""Captions and questions about procedural scenes, derived only from the objects drawn.

Regions: the image is cut in thirds each way; an object's region is where its centre falls ("top left",
"top", ..., "center", ..., "bottom right"). Relations ("left of", "right of", "above", "below") use the
dominant axis between two centres and are stated only when the centres are more than
``RELATION_MARGIN`` of the image apart along it, so they are never borderline. An object is named in
text ("the red circle") only when no other object in the scene has its colour and shape.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from vljepa.data.scene_render import PlacedObject

REGIONS: tuple[str, ...] = (
    "top left",
    "top",
    "top right",
    "left",
    "center",
    "right",
    "bottom left",
    "bottom",
    "bottom right",
)
RELATIONS: dict[str, str] = {"left of": "right of", "right of": "left of", "above": "below", "below": "above"}
RELATION_MARGIN = 0.15
NUMBER_WORDS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
YES_NO = ["yes", "no"]
QUESTION_TYPES: tuple[str, ...] = ("color", "shape", "count", "position", "relation", "existence")


def region_of(item: PlacedObject) -> str:
    column = min(int(item.x * 3), 2)
    row = min(int(item.y * 3), 2)
    return REGIONS[row * 3 + column]


def relation_between(first: PlacedObject, second: PlacedObject) -> str | None:
    """How ``first`` lies relative to ``second`` ("left of", ...), or None when too close to call."""
    dx, dy = first.x - second.x, first.y - second.y
    if abs(dx) >= abs(dy):
        if abs(dx) <= RELATION_MARGIN:
            return None
        return "left of" if dx < 0 else "right of"
    if abs(dy) <= RELATION_MARGIN:
        return None
    return "above" if dy < 0 else "below"


def plural(shape: str) -> str:
    return shape + ("es" if shape.endswith(("s", "sh", "ch", "x")) else "s")


def number_word(count: int) -> str:
    return NUMBER_WORDS[count] if count < len(NUMBER_WORDS) else str(count)


def with_article(phrase: str) -> str:
    """``"a red circle"``, ``"an orange star"``."""
    return ("an " if phrase[:1] in "aeiou" else "a ") + phrase


def counted(count: int, color: str, shape: str) -> str:
    """``"a red circle"``, ``"two red circles"``."""
    if count == 1:
        return with_article(f"{color} {shape}")
    return f"{number_word(count)} {color} {plural(shape)}"


def join_phrases(phrases: Sequence[str]) -> str:
    if len(phrases) <= 1:
        return "".join(phrases)
    return ", ".join(phrases[:-1]) + " and " + phrases[-1]


def unique_objects(objects: Sequence[PlacedObject]) -> list[PlacedObject]:
    """Objects whose colour-shape pair occurs once in the scene (they can be named unambiguously)."""
    pairs = Counter(item.pair for item in objects)
    return [item for item in objects if pairs[item.pair] == 1]


def _relation_pairs(objects: Sequence[PlacedObject]) -> list[tuple[PlacedObject, str, PlacedObject]]:
    named = unique_objects(objects)
    found = []
    for first in named:
        for second in named:
            if first is not second:
                relation = relation_between(first, second)
                if relation is not None:
                    found.append((first, relation, second))
    return found


def caption_facts(
    objects: Sequence[PlacedObject], rng: np.random.Generator
) -> tuple[list[tuple[tuple[str, str], int]], list[PlacedObject], tuple[PlacedObject, str, PlacedObject] | None]:
    """What a scene's captions state: ``((colour, shape), count)`` pairs in inventory order, the objects
    left to right, and one relation ``(first, relation, second)`` drawn from ``rng`` (None if none holds)."""
    pairs = Counter((item.color, item.shape) for item in objects)
    ordered = sorted(pairs.items(), key=lambda entry: (-entry[1], entry[0][1], entry[0][0]))
    by_x = sorted(objects, key=lambda item: (item.x, item.y))
    relations = _relation_pairs(objects)
    relation = relations[int(rng.integers(len(relations)))] if relations else None
    return ordered, by_x, relation


def scene_captions(objects: Sequence[PlacedObject], rng: np.random.Generator, limit: int) -> list[str]:
    """Up to ``limit`` distinct captions: inventory with counts, positions, a relation, sizes, total count."""
    ordered, by_x, relation = caption_facts(objects, rng)
    inventory = join_phrases([counted(count, color, shape) for (color, shape), count in ordered])
    captions = [
        inventory,
        join_phrases([with_article(f"{item.color} {item.shape} at the {region_of(item)}") for item in by_x]),
    ]
    if relation is not None:
        first, name, second = relation
        captions.append(f"the {first.color} {first.shape} is {name} the {second.color} {second.shape}")
    captions.append(join_phrases([with_article(f"{item.size} {item.color} {item.shape}") for item in by_x]))
    total = len(objects)
    captions.append(f"{number_word(total)} object{'s' if total != 1 else ''}: {inventory}")
    distinct = list(dict.fromkeys(captions))
    return distinct[:limit]


def scene_questions(
    objects: Sequence[PlacedObject],
    rng: np.random.Generator,
    *,
    colors: Sequence[str],
    shapes: Sequence[str],
    max_objects: int,
    absent_pairs: Sequence[str],
    limit: int,
) -> list[dict[str, object]]:
    """Up to ``limit`` questions, cycling over the question types in a seeded order.

    Each question is ``{"question", "answer", "question_type", "candidates"}``. ``absent_pairs`` are the
    colour-shape pairs that existence questions may ask about when answering "no" (held-out pairs are
    left out of it for non-held-out splits).
    """
    pools: dict[str, list[tuple[str, str, list[str]]]] = {kind: [] for kind in QUESTION_TYPES}
    shape_counts = Counter(item.shape for item in objects)
    color_counts = Counter(item.color for item in objects)
    numbers = [str(n) for n in range(max_objects + 1)]
    for shape, count in sorted(shape_counts.items()):
        if count == 1:
            item = next(obj for obj in objects if obj.shape == shape)
            pools["color"].append((f"what color is the {shape}?", item.color, list(colors)))
    for color, count in sorted(color_counts.items()):
        if count == 1:
            item = next(obj for obj in objects if obj.color == color)
            pools["shape"].append((f"what shape is the {color} object?", item.shape, list(shapes)))
    present_shapes = [shape for shape in shapes if shape_counts[shape]]
    absent_shapes = [shape for shape in shapes if not shape_counts[shape]]
    if absent_shapes:  # one zero-count question at most, so "0" does not dominate the counts
        present_shapes.append(absent_shapes[int(rng.integers(len(absent_shapes)))])
    for shape in present_shapes:
        pools["count"].append((f"how many {plural(shape)} are there?", str(shape_counts[shape]), numbers))
    for color in sorted(color_counts):
        pools["count"].append((f"how many {color} objects are there?", str(color_counts[color]), numbers))
    pools["count"].append(("how many objects are there?", str(len(objects)), numbers))
    for item in unique_objects(objects):
        pools["position"].append((f"where is the {item.color} {item.shape}?", region_of(item), list(REGIONS)))
    for first, relation, second in _relation_pairs(objects):
        asked, answer = (relation, "yes") if rng.random() < 0.5 else (RELATIONS[relation], "no")
        pools["relation"].append(
            (f"is the {first.color} {first.shape} {asked} the {second.color} {second.shape}?", answer, YES_NO)
        )
    present = sorted({item.pair for item in objects})
    absent = [pair for pair in absent_pairs if pair not in present]
    for pair in present:
        pools["existence"].append((f"is there {with_article(pair)}?", "yes", YES_NO))
    for index in rng.permutation(len(absent))[: len(present)]:
        pools["existence"].append((f"is there {with_article(absent[index])}?", "no", YES_NO))

    for kind in QUESTION_TYPES:
        order = rng.permutation(len(pools[kind]))
        pools[kind] = [pools[kind][i] for i in order]
    questions: list[dict[str, object]] = []
    seen: set[str] = set()
    type_order = [QUESTION_TYPES[i] for i in rng.permutation(len(QUESTION_TYPES))]
    while len(questions) < limit and any(pools[kind] for kind in type_order):
        for kind in type_order:
            if pools[kind] and len(questions) < limit:
                question, answer, candidates = pools[kind].pop(0)
                if question not in seen:
                    seen.add(question)
                    questions.append(
                        {
                            "question": question,
                            "answer": answer,
                            "question_type": kind,
                            "candidates": candidates,
                        }
                    )
    return questions
