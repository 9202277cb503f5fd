"""The training paraphrase grammar: how ``easyvqa-paraphrased`` rewords easy-VQA's train questions.

Its templates and word lists are its own, kept apart from the robustness grammar
(:mod:`vljepa.data.reworded_grammar`) by construction: different synonyms ("coloring / coloration /
pigment", "kind / type / sort of shape", "item / thing", "photo / scene / drawing"), different negations
("lacks", "absent", "missing", "free of", "is it false that", "isn't"), different requests ("describe /
report / specify / give / indicate") and courtesies ("kindly", "i'd like to know", "do you know",
"i wonder"). ``tests/vljepa/test_data_reworded.py`` proves that no template, word-list entry or key
phrase is shared and that no frame is ever worded the same by both grammars.

What is shared is English syntax. The ``syntax`` category asks yes/no questions in the polar-question
constructions a grammar of English lists (predication "is the item red?", a fronted target "a circle: does
the photo have one?", declarative and tag questions "..., right?", a cleft "is it a circle that ...", and
negation by exclusion "does the item have a coloring besides red?"). It was added in session 6, after the
robustness set's yes/no questions answered with a colour or shape word turned out to be, almost all, in three
constructions no training question used (predication "is the figure red?", dislocation "a red shape, is there
one in the image?", exclusion "is the shape some color other than red?"). For those three the robustness set
measures unseen wordings of seen constructions; ``easyvqa-unseen-constructions``
(:mod:`vljepa.data.unseen_constructions`) is the held-out check for constructions. BENCHMARKS.md has both.

The grammar stays small on purpose (at most ~3,000 distinct questions over the 35 easy-VQA frames): a
predictor that caches frozen language-model states per distinct question pays per string.
"""

from __future__ import annotations

from vljepa.data.phrase_grammar import PhraseGrammar, presence_forms

PARAPHRASE_WORDS: dict[str, tuple[str, ...]] = {
    "pic": ("photo", "scene", "drawing"),
    "item": ("item", "thing"),
    "paint": ("coloring", "coloration", "pigment"),
    "kind": ("kind of shape", "type of shape", "sort of shape"),
}

_COLOR_TARGET = "a {col} {item}"
_SHAPE_TARGET = "a {shp}"

PARAPHRASE_TEMPLATES: dict[str, dict[str, tuple[str, ...]]] = {
    "lexical": {
        "shape": ("which {kind} is in the {pic}?", "what {kind} do we have here?", "what {kind} is drawn?"),
        "shape_of_color": ("what {kind} is the {col} {item}?", "which {kind} is the {col} {item}?"),
        "color": ("what {paint} does the {item} have?", "what is the {paint} of the {item}?"),
        "color_of_shape": ("what {paint} does the {shp} have?", "what is the {paint} of the {shp}?"),
        **presence_forms(
            has=("does the {pic} have {target}?", "is {target} drawn here?", "do we have {target} here?"),
            no=(),
            color_target=_COLOR_TARGET,
            shape_target=_SHAPE_TARGET,
        ),
        "no_color": (
            "does the {pic} lack a {col} {item}?",
            "is a {col} {item} absent from the {pic}?",
            "is it false that the {pic} has a {col} {item}?",
            "is a {col} {item} missing from the {pic}?",
            "is it correct that the {item} isn't {col}?",
            "is the {pic} free of {col} things?",
        ),
        "no_shape": (
            "does the {pic} lack a {shp}?",
            "is a {shp} absent from the {pic}?",
            "is it false that the {pic} has a {shp}?",
            "is a {shp} missing from the {pic}?",
            "is it correct that the {item} isn't a {shp}?",
            "is the {pic} free of {shp}s?",
        ),
    },
    "request": {
        "shape": (
            "describe the {kind} in the {pic}.",
            "report the {kind} in the {pic}.",
            "specify the {kind} drawn.",
        ),
        "shape_of_color": (
            "specify the {kind} of the {col} {item}.",
            "report the {kind} of the {col} {item}.",
        ),
        "color": (
            "give the {paint} of the {item}.",
            "specify the {paint} of the {item}.",
            "report the {item}'s {paint}.",
        ),
        "color_of_shape": (
            "give the {paint} of the {shp}.",
            "specify the {paint} of the {shp}.",
            "report the {shp}'s {paint}.",
        ),
        **presence_forms(
            has=("indicate whether the {pic} has {target}.", "report if {target} is drawn."),
            no=("indicate whether the {pic} lacks {target}.", "report if {target} is absent."),
            color_target=_COLOR_TARGET,
            shape_target=_SHAPE_TARGET,
        ),
    },
    "courteous": {
        "shape": (
            "kindly describe the {kind} in the {pic}.",
            "i'd like to know which {kind} is in the {pic}.",
            "do you know which {kind} is in the {pic}?",
            "i wonder which {kind} the {pic} has.",
        ),
        "shape_of_color": (
            "kindly specify the {kind} of the {col} {item}.",
            "do you know the {kind} of the {col} {item}?",
        ),
        "color": (
            "kindly give the {paint} of the {item}.",
            "do you know the {paint} of the {item}?",
            "i'd like to know the {item}'s {paint}.",
        ),
        "color_of_shape": (
            "kindly give the {paint} of the {shp}.",
            "do you know the {paint} of the {shp}?",
            "i'd like to know the {shp}'s {paint}.",
        ),
        **presence_forms(
            has=(
                "kindly indicate whether the {pic} has {target}.",
                "do you know if the {pic} has {target}?",
                "i wonder whether the {pic} has {target}.",
            ),
            no=(
                "kindly indicate whether the {pic} lacks {target}.",
                "do you know if {target} is absent?",
                "i wonder whether the {pic} lacks {target}.",
            ),
            color_target=_COLOR_TARGET,
            shape_target=_SHAPE_TARGET,
        ),
    },
    # Yes/no questions in English's other polar-question constructions, in this grammar's own words: predication
    # on the item, a fronted (dislocated) target, declarative and tag questions, a cleft, and (negated) exclusion.
    # The three categories above only vary words and register; their yes/no questions all start alike.
    "syntax": {
        "has_color": (
            "is the {item} {col}?",
            "a {col} {item}: does the {pic} have one?",
            "the {pic} has a {col} {item}?",
            "the {pic} has a {col} {item}, right?",
            "is it a {col} {item} that the {pic} has?",
        ),
        "has_shape": (
            "is the {item} a {shp}?",
            "a {shp}: does the {pic} have one?",
            "the {pic} has a {shp}?",
            "the {pic} has a {shp}, right?",
            "is it a {shp} that the {pic} has?",
        ),
        "no_color": (
            "the {item} isn't {col}, right?",
            "a {col} {item}: does the {pic} lack one?",
            "the {pic} lacks a {col} {item}?",
            "a {col} {item} is absent from the {pic}, right?",
            "is it a {col} {item} that the {pic} lacks?",
            "does the {item} have a {paint} besides {col}?",
        ),
        "no_shape": (
            "the {item} isn't a {shp}, right?",
            "a {shp}: does the {pic} lack one?",
            "the {pic} lacks a {shp}?",
            "a {shp} is absent from the {pic}, right?",
            "is it a {shp} that the {pic} lacks?",
            "does the {item} have a {kind} besides a {shp}?",
        ),
    },
}

PARAPHRASE_KEY_PHRASES: tuple[str, ...] = (
    "lack",
    "lacks",
    "absent",
    "missing",
    "free of",
    "is it false that",
    "is it correct that",
    "isn't",
    "describe",
    "report",
    "specify",
    "give",
    "indicate",
    "kindly",
    "i'd like to know",
    "do you know",
    "i wonder",
    "drawn",
    "do we have",
    "things",
    "right",
    "besides",
)

PARAPHRASE_GRAMMAR = PhraseGrammar(
    name="easyvqa-paraphrased",
    templates=PARAPHRASE_TEMPLATES,
    words=PARAPHRASE_WORDS,
    key_phrases=PARAPHRASE_KEY_PHRASES,
)
