"""A small finite grammar that words a :class:`~vljepa.data.question_frames.QuestionFrame` as a question.

A grammar has categories (e.g. ``"polite"``); each category has templates per frame form (see
:data:`vljepa.data.question_frames.FORMS`), and the grammar has word lists. A template is a
``str.format`` string whose fields are ``{col}`` / ``{shp}`` (the colour / shape the frame names) or
the name of one of the grammar's word lists (``{hue}`` -> one of ``("hue", "tint", ...)``). Rendering
picks a template of the frame's form in the category, then one word per field, all from a caller's
``random.Random``, so the output is deterministic given the seed. Because the grammar is finite, every
string it can produce can be listed (:meth:`PhraseGrammar.renderings`); tests use this to prove two
grammars never produce the same question.

Example:
    >>> import random
    >>> from vljepa.data.question_frames import QuestionFrame
    >>> grammar = PhraseGrammar(
    ...     name="demo",
    ...     templates={"plain": {"color_of_shape": ("what {hue} is the {shp}?",)}},
    ...     words={"hue": ("hue", "tint")},
    ... )
    >>> sorted(grammar.renderings(QuestionFrame("color", shape="circle"), "plain"))
    ['what hue is the circle?', 'what tint is the circle?']
"""

from __future__ import annotations

import hashlib
import itertools
import json
import random
import re
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from vljepa.data.question_frames import FORMS, QuestionFrame

FRAME_FIELDS = ("col", "shp")


def template_fields(template: str) -> list[str]:
    """The ``{field}`` names of a template, in order, without repeats."""
    names = [name for _, name, _, _ in string.Formatter().parse(template) if name]
    return list(dict.fromkeys(names))


def contains_phrase(text: str, phrase: str) -> bool:
    """Whether ``phrase`` occurs in ``text`` as whole words ("no" is not in "know")."""
    return re.search(rf"(?<![\w']){re.escape(phrase)}(?![\w'])", text) is not None


def stable_rng(*parts: object) -> random.Random:
    """A ``random.Random`` seeded from ``parts`` by SHA-256 (independent of Python's hash seed)."""
    digest = hashlib.sha256(json.dumps([str(part) for part in parts]).encode("utf-8")).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


@dataclass(frozen=True)
class PhraseGrammar:
    """Templates per category and frame form, and the word lists their fields draw from."""

    name: str
    templates: Mapping[str, Mapping[str, tuple[str, ...]]]
    words: Mapping[str, tuple[str, ...]]
    key_phrases: tuple[str, ...] = field(
        default=(),
        metadata={
            "help": "Phrases that mark this grammar (besides its word lists); another grammar must "
            "never produce them."
        },
    )

    def __post_init__(self) -> None:
        for category, forms in self.templates.items():
            for form, templates in forms.items():
                if form not in FORMS:
                    raise ValueError(f"grammar {self.name!r} category {category!r}: unknown form {form!r}")
                if not templates:
                    raise ValueError(
                        f"grammar {self.name!r} category {category!r} form {form!r}: no templates"
                    )
                for template in templates:
                    unknown = [
                        f for f in template_fields(template) if f not in FRAME_FIELDS and f not in self.words
                    ]
                    if unknown:
                        raise ValueError(
                            f"grammar {self.name!r} template {template!r} uses fields {unknown} that are "
                            f"neither {FRAME_FIELDS} nor word lists {sorted(self.words)}"
                        )

    @property
    def categories(self) -> tuple[str, ...]:
        return tuple(self.templates)

    def categories_for(self, frame: QuestionFrame) -> tuple[str, ...]:
        """The categories that have templates for ``frame``'s form."""
        return tuple(category for category, forms in self.templates.items() if frame.form in forms)

    def _templates(self, frame: QuestionFrame, category: str) -> tuple[str, ...]:
        if category not in self.templates:
            raise ValueError(f"grammar {self.name!r} has no category {category!r}; it has {self.categories}")
        templates = self.templates[category].get(frame.form)
        if not templates:
            raise ValueError(
                f"grammar {self.name!r} category {category!r} has no templates for form {frame.form!r} "
                f"({frame})"
            )
        return templates

    def _choices(self, template: str, frame: QuestionFrame) -> list[tuple[str, tuple[str, ...]]]:
        fixed = {"col": (frame.color,), "shp": (frame.shape,)}
        return [(name, fixed.get(name) or self.words[name]) for name in template_fields(template)]

    def render(self, frame: QuestionFrame, category: str, rng: random.Random) -> str:
        """One wording of ``frame`` in ``category``: a template, then a word per field, drawn from ``rng``."""
        template = rng.choice(self._templates(frame, category))
        values = {name: rng.choice(options) for name, options in self._choices(template, frame)}
        return template.format(**values)

    def renderings(self, frame: QuestionFrame, category: str | None = None) -> set[str]:
        """Every string :meth:`render` can produce for ``frame`` (in ``category``, or in any category)."""
        categories = self.categories_for(frame) if category is None else (category,)
        found: set[str] = set()
        for name in categories:
            for template in self._templates(frame, name):
                choices = self._choices(template, frame)
                for combination in itertools.product(*(options for _, options in choices)):
                    found.add(template.format(**dict(zip((n for n, _ in choices), combination))))
        return found

    def all_templates(self) -> set[str]:
        return {t for forms in self.templates.values() for templates in forms.values() for t in templates}

    def all_key_phrases(self) -> set[str]:
        """Every word-list entry and key phrase of this grammar."""
        return {word for words in self.words.values() for word in words} | set(self.key_phrases)

    def fingerprint(self) -> str:
        """A hash of the templates and word lists (part of dataset cache keys)."""
        payload = {"templates": self.templates, "words": self.words, "key_phrases": self.key_phrases}
        text = json.dumps(payload, sort_keys=True, default=list)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def presence_forms(
    *, has: tuple[str, ...], no: tuple[str, ...], color_target: str, shape_target: str
) -> dict[str, tuple[str, ...]]:
    """Presence templates written once with ``{target}``, expanded for a colour and a shape target.

    ``{target}`` becomes ``color_target`` (e.g. ``"a {col} shape"``) in the ``has_color``/``no_color``
    forms and ``shape_target`` (e.g. ``"a {shp}"``) in ``has_shape``/``no_shape``; an empty tuple adds
    no forms.
    """
    forms: dict[str, tuple[str, ...]] = {}
    for prefix, templates in (("has", has), ("no", no)):
        if templates:
            forms[f"{prefix}_color"] = tuple(t.replace("{target}", color_target) for t in templates)
            forms[f"{prefix}_shape"] = tuple(t.replace("{target}", shape_target) for t in templates)
    return forms


def shared_phrases(text_source: Iterable[str], phrases: Iterable[str]) -> set[tuple[str, str]]:
    """``(text, phrase)`` pairs where a phrase occurs as whole words in a text (empty = disjoint)."""
    phrases = list(phrases)
    return {(text, phrase) for text in text_source for phrase in phrases if contains_phrase(text, phrase)}
