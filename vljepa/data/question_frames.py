"""Semantic frames of easy-VQA questions: what a question asks, independent of its wording.

easy-VQA has 107 distinct question strings built from a handful of templates. Each parses into a
:class:`QuestionFrame`:

* ``kind="shape"``: the object's shape is asked ("what shape is in the image?"); ``color`` is the colour
  the question names, if any ("what is the blue shape?" -> ``color="blue"``).
* ``kind="color"``: the object's colour is asked ("what color is the shape?"); ``shape`` is the shape
  named, if any ("what color is the triangle?" -> ``shape="triangle"``).
* ``kind="color_presence"`` / ``"shape_presence"``: a yes/no question on whether a colour ("is there a
  red shape?") or a shape ("does the image contain a circle?") is present; ``negated`` is True for the
  negated forms ("is there not a circle?", "is no red shape present?", "does the image not contain ...").

Answer rules (:func:`reworded_answer`): a shape or colour answer does not depend on the wording, so it
is kept. For presence questions the fact is ``present = (answer == "yes") != negated``; a question
about the same fact asked with negation ``n`` has the answer ``"yes" if present != n else "no"``. So
rewording a plain question as a negated one flips its answer, and no label is invented.

Example:
    >>> frame = parse_question("is there not a red shape?")
    >>> frame
    QuestionFrame(kind='color_presence', color='red', shape='', negated=True)
    >>> reworded_answer(frame, "no", negated=False)
    'yes'
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Literal

from vljepa.data.easyvqa import EASYVQA_COLORS, EASYVQA_SHAPES

FrameKind = Literal["shape", "color", "color_presence", "shape_presence"]
FRAME_KINDS: tuple[str, ...] = ("shape", "color", "color_presence", "shape_presence")
PRESENCE_KINDS = ("color_presence", "shape_presence")

# Template groups ("forms") a grammar writes wordings for; see QuestionFrame.form.
FORMS: tuple[str, ...] = (
    "shape",
    "shape_of_color",
    "color",
    "color_of_shape",
    "has_color",
    "has_shape",
    "no_color",
    "no_shape",
)
NEGATED_FORMS = ("no_color", "no_shape")


@dataclass(frozen=True)
class QuestionFrame:
    """What an easy-VQA question asks (see the module docstring)."""

    kind: FrameKind
    color: str = ""
    shape: str = ""
    negated: bool = False

    def __post_init__(self) -> None:
        if self.kind not in FRAME_KINDS:
            raise ValueError(f"frame kind {self.kind!r} must be one of {FRAME_KINDS}")
        if self.color and self.color not in EASYVQA_COLORS:
            raise ValueError(f"frame colour {self.color!r} is not an easy-VQA colour {EASYVQA_COLORS}")
        if self.shape and self.shape not in EASYVQA_SHAPES:
            raise ValueError(f"frame shape {self.shape!r} is not an easy-VQA shape {EASYVQA_SHAPES}")
        if self.negated and self.kind not in PRESENCE_KINDS:
            raise ValueError(f"only presence questions can be negated, got a negated {self.kind!r} frame")
        names_color = self.kind in ("shape", "color_presence")  # which attribute a frame may name
        if self.shape if names_color else self.color:
            raise ValueError(f"a {self.kind!r} frame cannot name colour={self.color!r} shape={self.shape!r}")
        if self.is_presence and not (self.color or self.shape):
            raise ValueError(f"a {self.kind!r} frame needs the colour or shape whose presence it asks")

    @property
    def is_presence(self) -> bool:
        return self.kind in PRESENCE_KINDS

    @property
    def form(self) -> str:
        """The template group that words this frame (one of :data:`FORMS`)."""
        if self.kind == "shape":
            return "shape_of_color" if self.color else "shape"
        if self.kind == "color":
            return "color_of_shape" if self.shape else "color"
        prefix = "no" if self.negated else "has"
        return f"{prefix}_{'color' if self.kind == 'color_presence' else 'shape'}"

    def with_negation(self, negated: bool) -> QuestionFrame:
        """The same fact asked with or without negation (presence frames only)."""
        if not self.is_presence:
            raise ValueError(f"a {self.kind!r} question has no negated form")
        return replace(self, negated=negated)


def all_frames() -> list[QuestionFrame]:
    """Every frame easy-VQA's templates can express (35), in a fixed order."""
    frames = [QuestionFrame("shape")]
    frames += [QuestionFrame("shape", color=color) for color in EASYVQA_COLORS]
    frames += [QuestionFrame("color")]
    frames += [QuestionFrame("color", shape=shape) for shape in EASYVQA_SHAPES]
    for negated in (False, True):
        frames += [QuestionFrame("color_presence", color=color, negated=negated) for color in EASYVQA_COLORS]
        frames += [QuestionFrame("shape_presence", shape=shape, negated=negated) for shape in EASYVQA_SHAPES]
    return frames


_COLOR = f"(?P<color>{'|'.join(EASYVQA_COLORS)})"
_SHAPE = f"(?P<shape>{'|'.join(EASYVQA_SHAPES)})"
_TARGET = f"(?:{_COLOR} shape|{_SHAPE})"  # "red shape" or "circle"
_PATTERNS: tuple[tuple[str, str], ...] = (
    ("shape", r"what shape is in the image"),
    ("shape", r"what shape does the image contain"),
    ("shape", r"what shape is present"),
    ("shape", rf"what is the {_COLOR} shape"),
    ("color", rf"what color is the (?:{_SHAPE}|shape)"),
    ("color", rf"what is the color of the (?:{_SHAPE}|shape)"),
    ("presence", rf"is there (?P<negation>not )?a {_TARGET}(?: in the image)?"),
    ("presence", rf"does the image (?P<negation>not )?contain a {_TARGET}"),
    ("presence", rf"is (?:a|(?P<negation>no)) {_TARGET} present"),
)
_COMPILED = tuple((kind, re.compile(pattern + r"\?")) for kind, pattern in _PATTERNS)


def parse_question(question: str) -> QuestionFrame:
    """The frame of an easy-VQA question; any other question raises ``ValueError`` naming it."""
    text = " ".join(question.lower().split())
    for kind, pattern in _COMPILED:
        match = pattern.fullmatch(text)
        if match is None:
            continue
        groups = match.groupdict()
        color, shape = groups.get("color") or "", groups.get("shape") or ""
        if kind == "presence":
            kind = "color_presence" if color else "shape_presence"
            return QuestionFrame(kind, color=color, shape=shape, negated=bool(groups.get("negation")))
        return QuestionFrame(kind, color=color, shape=shape)
    raise ValueError(
        f"question {question!r} is not one of easy-VQA's question templates; "
        "the reworded/paraphrased datasets only know easy-VQA's own questions"
    )


def reworded_answer(frame: QuestionFrame, answer: str, *, negated: bool) -> str:
    """The answer to ``frame``'s fact asked with negation ``negated`` (see the module docstring).

    ``answer`` answers ``frame`` as it was asked. Shape and colour answers are returned unchanged.
    """
    if not frame.is_presence:
        if negated:
            raise ValueError(f"a {frame.kind!r} question has no negated form")
        return answer
    if answer not in ("yes", "no"):
        raise ValueError(f"a presence question needs a yes/no answer, got {answer!r} for {frame}")
    present = (answer == "yes") != frame.negated
    return "yes" if present != negated else "no"
