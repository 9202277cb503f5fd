"""Scene captions in other words: the facts of :func:`vljepa.data.scene_text.scene_captions`, worded by a
second grammar that training never uses (``caption_style="reworded"``, registry name ``scenes-reworded``).

Caption ``k`` states the same facts as training caption ``k`` of the same scene (the same objects, the
same relation drawn by the same generator call), with other sentence frames, other word order and
synonyms:

| training caption                          | reworded caption                                            |
|-------------------------------------------|-------------------------------------------------------------|
| ``two red circles and a blue star``       | ``the picture shows two circles coloured red and one star coloured blue`` |
| ``a red circle at the top left, ...``     | ``one circle coloured red sits in the upper left corner; ...`` |
| ``the red circle is left of the blue star`` | ``the star coloured blue has the circle coloured red on its left`` |
| ``a small red circle, a large blue star`` | ``from left to right: one little circle coloured red, one big star coloured blue`` |
| ``three objects: <inventory>``            | ``altogether three items; the picture shows ...``             |

:data:`TRAINING_CAPTION_MARKERS` and :data:`REWORDED_CAPTION_MARKERS` are the phrases that mark each
grammar; ``tests/vljepa/test_data_scenes_reworded.py`` checks that neither grammar's captions ever
contain the other's markers and that no caption is shared.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from vljepa.data.scene_render import PlacedObject
from vljepa.data.scene_text import caption_facts, join_phrases, number_word, plural, region_of

REGION_PHRASES: dict[str, str] = {
    "top left": "upper left corner",
    "top": "upper middle",
    "top right": "upper right corner",
    "left": "middle of the left side",
    "center": "middle",
    "right": "middle of the right side",
    "bottom left": "lower left corner",
    "bottom": "lower middle",
    "bottom right": "lower right corner",
}
# "A left of B" is said from B's side: "B has A on its left".
RELATION_PHRASES: dict[str, str] = {
    "left of": "on its left",
    "right of": "on its right",
    "above": "over it",
    "below": "under it",
}
SIZE_WORDS: dict[str, str] = {"small": "little", "large": "big"}

TRAINING_CAPTION_MARKERS: tuple[str, ...] = (
    "at the", "top", "bottom", "center", "left of", "right of", "above", "below", "small", "large",
    "object", "objects", " is ",
)  # fmt: skip
REWORDED_CAPTION_MARKERS: tuple[str, ...] = (
    "the picture shows", "coloured", "sits in", "upper", "lower", "middle", "corner", "side", "on its left",
    "on its right", "over it", "under it", "little", "big", "from left to right", "altogether", "item",
    "items",
)  # fmt: skip


def described(count: int, color: str, shape: str) -> str:
    """``"one circle coloured red"``, ``"two circles coloured red"``."""
    return f"{number_word(count)} {shape if count == 1 else plural(shape)} coloured {color}"


def named(item: PlacedObject) -> str:
    """``"the circle coloured red"`` (used only for objects whose colour-shape pair is unique)."""
    return f"the {item.shape} coloured {item.color}"


def reworded_scene_captions(
    objects: Sequence[PlacedObject], rng: np.random.Generator, limit: int
) -> list[str]:
    """Up to ``limit`` captions with the facts of :func:`~vljepa.data.scene_text.scene_captions` for the same
    ``objects`` and generator state, caption by caption, in the reworded grammar (module docstring)."""
    ordered, by_x, relation = caption_facts(objects, rng)
    inventory = "the picture shows " + join_phrases(
        [described(n, color, shape) for (color, shape), n in ordered]
    )
    captions = [
        inventory,
        "; ".join(
            f"{described(1, item.color, item.shape)} sits in the {REGION_PHRASES[region_of(item)]}"
            for item in by_x
        ),
    ]
    if relation is not None:
        first, name, second = relation
        captions.append(f"{named(second)} has {named(first)} {RELATION_PHRASES[name]}")
    captions.append(
        "from left to right: "
        + ", ".join(f"one {SIZE_WORDS[item.size]} {item.shape} coloured {item.color}" for item in by_x)
    )
    total = len(objects)
    captions.append(f"altogether {number_word(total)} item{'s' if total != 1 else ''}; {inventory}")
    return list(dict.fromkeys(captions))[:limit]
