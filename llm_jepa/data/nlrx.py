"""``nl-rx:PATH``: NL-RX-SYNTH / NL-RX-TURK (Locascio et al. 2016), the regex data LLM-JEPA reports on.

The upstream format is a parallel corpus: ``src.txt`` holds one natural-language description per line and
``targ.txt`` the regex on the same line (``&`` = and, ``~`` = not, whole-line match). ``PATH`` is the folder.
When it holds ``src-<split>.txt`` / ``targ-<split>.txt`` (the deep-regex model folders) those are read; with
only ``src.txt`` / ``targ.txt`` (the ``datasets/`` release, which has no splits) the rows are split by a hash
of the regex (``test_fraction``), so one regex never sits in both splits; ``split="all"`` reads every row.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from llm_jepa.data.registry import register_source
from llm_jepa.data.schema import BadRow, Example, RowOrigin, assign_split, build_messages, system_prompt_for


def _pair_files(path: Path, split: str) -> tuple[Path, Path, bool]:
    """(descriptions, regexes, needs_hash_split)."""
    if not path.is_dir():
        raise FileNotFoundError(f"NL-RX path must be a folder holding src.txt and targ.txt: {path}")
    for source, target, hashed in (
        (f"src-{split}.txt", f"targ-{split}.txt", False),
        ("src.txt", "targ.txt", split != "all"),
    ):
        if (path / source).is_file() and (path / target).is_file():
            return path / source, path / target, hashed
    raise FileNotFoundError(f"{path} holds neither src-{split}.txt + targ-{split}.txt nor src.txt + targ.txt")


@register_source("nl-rx", takes_path=True, description="NL-RX parallel src.txt / targ.txt (regex)")
def load_nlrx(
    path: Path, split: str, test_fraction: float = 0.1, system_prompt: str | None = None
) -> Iterator[Example | BadRow]:
    """One example per line pair; an empty description or regex is a bad row naming both files' line."""
    src_file, targ_file, hashed = _pair_files(path, split)
    if hashed and split not in ("train", "test"):
        raise ValueError(f"{path} has no split files; choose split 'train', 'test' or 'all', got {split!r}")
    descriptions = src_file.read_text(encoding="utf-8").splitlines()
    regexes = targ_file.read_text(encoding="utf-8").splitlines()
    if len(descriptions) != len(regexes):
        raise ValueError(
            f"{src_file} has {len(descriptions)} lines but {targ_file} has {len(regexes)}; the NL-RX files "
            "are "
            "parallel (line i of one describes line i of the other)"
        )
    system = system_prompt_for("regex", system_prompt)
    for number, (description, regex) in enumerate(zip(descriptions, regexes), start=1):
        origin = RowOrigin(f"{src_file} + {targ_file.name}", number)
        regex = regex.strip()
        if hashed and regex and assign_split(regex, test_fraction) != split:
            continue
        row_id = f"nl-rx-{src_file.parent.name}-{number}"
        if not description.strip() or not regex:
            yield BadRow(origin, "empty description" if not description.strip() else "empty regex", row_id)
            continue
        yield Example(
            id=row_id,
            messages=build_messages(system, description.strip(), regex),
            task="regex",
            reference=regex,
            origin=origin,
            regex_dialect="nl-rx",  # NL-RX's & (and) and ~ (not)
        )
