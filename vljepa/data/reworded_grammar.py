"""The robustness grammar: how ``easyvqa-reworded`` words easy-VQA's questions (evaluation only).

Six categories, each a way a user might ask the same thing in other words:

* ``synonyms``: "hue / tint / shade / colour" for colour, "form / outline" for shape, "shown / visible /
  appear / include" for presence;
* ``word_order``: easy-VQA's own words, reordered ("the triangle is what color?");
* ``imperative``: "tell me / name / say / identify ...", "answer yes or no: ...";
* ``polite``: "could you / can you / would you / please ...";
* ``figure``: questions about "the figure / the object" and "the picture";
* ``negation``: negated presence questions with "not", "no", "anything but", "without", "other than".

The training paraphrase grammar (:mod:`vljepa.data.paraphrase_grammar`) has its own templates and word
lists; ``tests/vljepa/test_data_reworded.py`` proves the two share no template, no word-list entry or
key phrase, and never produce the same string. Keep it so when editing either file.
"""

from __future__ import annotations

from vljepa.data.phrase_grammar import PhraseGrammar, presence_forms

NEGATION_CATEGORY = "negation"


ROBUST_WORDS: dict[str, tuple[str, ...]] = {
    "hue": ("hue", "tint", "shade", "colour"),
    "form": ("form", "outline"),
    "noun": ("figure", "object"),
}

ROBUST_TEMPLATES: dict[str, dict[str, tuple[str, ...]]] = {
    "synonyms": {
        "shape": (
            "what {form} is in the image?",
            "which {form} appears in the image?",
            "what {form} is shown?",
        ),
        "shape_of_color": (
            "what {form} does the {col} shape have?",
            "what is the {form} of the {col} shape?",
        ),
        "color": (
            "what {hue} is the shape?",
            "what is the {hue} of the shape?",
            "which {hue} does the shape have?",
        ),
        "color_of_shape": (
            "what {hue} is the {shp}?",
            "what is the {hue} of the {shp}?",
            "which {hue} does the {shp} have?",
        ),
        **presence_forms(
            has=(
                "is {target} shown in the image?",
                "does {target} appear in the image?",
                "does the image include {target}?",
                "is {target} visible?",
            ),
            no=(
                "is {target} not shown in the image?",
                "does {target} not appear in the image?",
                "does the image not include {target}?",
                "is {target} not visible?",
            ),
            color_target="a {col} shape",
            shape_target="a {shp}",
        ),
    },
    "word_order": {
        "shape": (
            "in the image, what shape is there?",
            "the image contains what shape?",
            "present in the image is what shape?",
        ),
        "shape_of_color": ("the {col} shape is what shape?", "of what shape is the {col} shape?"),
        "color": (
            "the shape is what color?",
            "of what color is the shape?",
            "the color of the shape is what?",
        ),
        "color_of_shape": (
            "the {shp} is what color?",
            "of what color is the {shp}?",
            "the color of the {shp} is what?",
        ),
        **presence_forms(
            has=(
                "in the image, is there {target}?",
                "present in the image, is there {target}?",
                "{target}, is there one in the image?",
            ),
            no=(
                "in the image, is there not {target}?",
                "in the image, is {target} not present?",
                "{target}, is there not one in the image?",
            ),
            color_target="a {col} shape",
            shape_target="a {shp}",
        ),
    },
    "imperative": {
        "shape": (
            "tell me the shape in the image.",
            "name the shape in the image.",
            "say which shape is in the image.",
            "identify the shape in the image.",
        ),
        "shape_of_color": (
            "name the shape that is {col}.",
            "tell me what shape the {col} shape is.",
            "identify the shape that is {col}.",
        ),
        "color": (
            "tell me the colour of the shape.",
            "name the color of the shape.",
            "say what color the shape is.",
            "identify the color of the shape.",
        ),
        "color_of_shape": (
            "tell me the colour of the {shp}.",
            "name the color of the {shp}.",
            "say what color the {shp} is.",
            "identify the color of the {shp}.",
        ),
        **presence_forms(
            has=(
                "tell me whether there is {target}.",
                "say whether the image contains {target}.",
                "answer yes or no: is there {target}?",
            ),
            no=(
                "tell me whether there is not {target}.",
                "say whether the image does not contain {target}.",
                "answer yes or no: is there not {target}?",
            ),
            color_target="a {col} shape",
            shape_target="a {shp}",
        ),
    },
    "polite": {
        "shape": (
            "could you tell me what shape is in the image?",
            "please say which shape is in the image.",
            "can you name the shape in the image?",
            "would you tell me the shape in the image, please?",
        ),
        "shape_of_color": (
            "could you tell me what shape the {col} shape is?",
            "please name the shape that is {col}.",
            "can you say which shape is {col}?",
        ),
        "color": (
            "could you tell me what color the shape is?",
            "please say the color of the shape.",
            "can you name the color of the shape?",
        ),
        "color_of_shape": (
            "could you tell me what color the {shp} is?",
            "please say the color of the {shp}.",
            "can you name the color of the {shp}?",
            "would you tell me the colour of the {shp}?",
        ),
        **presence_forms(
            has=(
                "can you see {target}?",
                "could you tell me whether there is {target}?",
                "please say whether the image contains {target}.",
            ),
            no=(
                "could you tell me whether there is not {target}?",
                "please say whether the image does not contain {target}.",
                "would you tell me if there is not {target} in the image?",
            ),
            color_target="a {col} shape",
            shape_target="a {shp}",
        ),
    },
    "figure": {
        "shape": (
            "what shape is the {noun}?",
            "what shape is the {noun} in the picture?",
            "what shape does the picture show?",
        ),
        "shape_of_color": (
            "what shape is the {col} {noun}?",
            "what shape is the {col} {noun} in the picture?",
        ),
        "color": (
            "what color is the {noun}?",
            "what color is the {noun} in the picture?",
            "what is the color of the {noun}?",
        ),
        "color_of_shape": (
            "what color is the {shp} in the picture?",
            "what is the color of the {shp} in the picture?",
        ),
        "has_color": (
            "is the {noun} {col}?",
            "is the {noun} in the picture {col}?",
            "does the picture contain a {col} {noun}?",
        ),
        "has_shape": (
            "is the {noun} a {shp}?",
            "is the {noun} in the picture a {shp}?",
            "does the picture contain a {shp}?",
        ),
        "no_color": (
            "is the {noun} not {col}?",
            "is the {noun} in the picture not {col}?",
            "does the picture not contain a {col} {noun}?",
        ),
        "no_shape": (
            "is the {noun} not a {shp}?",
            "is the {noun} in the picture not a {shp}?",
            "does the picture not contain a {shp}?",
        ),
    },
    NEGATION_CATEGORY: {
        "no_color": (
            "is the shape anything but {col}?",
            "is the image without a {col} shape?",
            "is the shape some color other than {col}?",
            "is there no {col} shape in the image?",
        ),
        "no_shape": (
            "is the shape anything but a {shp}?",
            "is the image without a {shp}?",
            "is the shape something other than a {shp}?",
            "is there no {shp} in the image?",
        ),
    },
}

ROBUST_KEY_PHRASES: tuple[str, ...] = (
    "not",
    "no",
    "anything but",
    "without",
    "other than",
    "something",
    "tell me",
    "name",
    "say",
    "identify",
    "answer yes or no",
    "could you",
    "can you",
    "would you",
    "please",
    "can you see",
    "picture",
    "shown",
    "appears",
    "appear",
    "include",
    "visible",
)

ROBUST_GRAMMAR = PhraseGrammar(
    name="easyvqa-reworded", templates=ROBUST_TEMPLATES, words=ROBUST_WORDS, key_phrases=ROBUST_KEY_PHRASES
)
