"""The subcommand front of the ``vljepa`` and ``llm-jepa`` console scripts."""

from __future__ import annotations

import sys
from collections.abc import Container, Sequence


def split_subcommand(
    prog: str, usage: str, commands: Container[str], argv: Sequence[str] | None
) -> tuple[str, list[str]] | int:
    """``(command, rest)`` from argv (``sys.argv[1:]`` when None), or the exit status after printing the usage:
    0 for ``-h``/``--help``, 2 for no command or an unknown one."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage)
        return 0 if argv else 2
    if argv[0] not in commands:
        print(f"{prog}: unknown command {argv[0]!r}\n\n{usage}", file=sys.stderr)
        return 2
    return argv[0], argv[1:]
