"""``llm-jepa`` command line: ``train`` (this package), ``eval`` and ``compare`` (imported lazily).

    llm-jepa train recipes/llm_jepa/regex-smollm2-lora.yaml --max_steps 20
    accelerate launch --config_file recipes/accelerate/multi-gpu-ddp.yaml -m llm_jepa.cli train RECIPE.yaml
    llm-jepa eval ...      # llm_jepa.evaluate:main
    llm-jepa compare ...   # llm_jepa.compare:main
    llm-jepa push DIR --repo_id user/name   # jepa_core.hub.push_main (safetensors only, model card)
"""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Sequence

from jepa_core.cli import split_subcommand

USAGE = """usage: llm-jepa {train,eval,compare,push} [args ...]

  train RECIPE.yaml [--field value ...]   fine-tune with the LLM-JEPA objective (see recipes/llm_jepa/)
  eval ...                                generate and score a trained model (llm-jepa eval --help)
  compare ...                             LLM-JEPA vs. plain fine-tuning over seeds (llm-jepa compare --help)
  push DIR --repo_id user/name            publish a trained folder to the Hub (llm-jepa push --help)
"""

SUBCOMMANDS = {
    "train": ("llm_jepa.run", "main"),
    "eval": ("llm_jepa.evaluate", "main"),
    "compare": ("llm_jepa.compare", "main"),
    "push": ("jepa_core.hub", "push_main"),
}
KEYWORDS = {"push": {"kind": "llm-jepa"}}


def main(argv: Sequence[str] | None = None) -> int:
    """Dispatch to a subcommand; returns the process exit code."""
    parsed = split_subcommand("llm-jepa", USAGE, SUBCOMMANDS, argv)
    if isinstance(parsed, int):
        return parsed
    command, rest = parsed
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    module_name, function_name = SUBCOMMANDS[command]
    function = getattr(importlib.import_module(module_name), function_name)
    result = function(rest, **KEYWORDS.get(command, {}))
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
