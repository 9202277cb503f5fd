"""The Y-decoder and decoding-benchmark recipes parse into their own config dataclasses."""

from pathlib import Path

import pytest

from jepa_core.config import parse_config
from vljepa.decoding.benchmark import DecodingBenchmarkArguments
from vljepa.decoding.training import DecoderTrainingArguments, YDecoderArguments

RECIPE_DIR = Path(__file__).resolve().parents[2] / "recipes" / "vljepa"
# recipe -> (config dataclasses, the command-line flags its header says to add)
PARSERS = {
    "ydecoder-streams-text": ((YDecoderArguments, DecoderTrainingArguments), ["--output_dir", "out"]),
    "ydecoder-streams-vljepa-decoder": ((YDecoderArguments, DecoderTrainingArguments), ["--output_dir", "out"]),
    "ydecoder-bench-streams": ((DecodingBenchmarkArguments,), ["--model", "runs/streams-vljepa/model"]),
}


@pytest.mark.parametrize("stem", sorted(PARSERS))
def test_decoding_recipe_parses(stem):
    recipe = RECIPE_DIR / f"{stem}.yaml"
    assert recipe.read_text().startswith("#"), f"{recipe.name} must start with a header comment"
    types, flags = PARSERS[stem]
    configs = parse_config(types, [str(recipe), *flags])
    assert [type(c) for c in configs] == list(types)
