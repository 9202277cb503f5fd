"""The subcommand front and logging set-up shared by the ``vljepa`` and ``llm-jepa`` console scripts."""

from __future__ import annotations

import logging
import sys
from collections.abc import Container, Sequence
from pathlib import Path


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


def setup_logging(log_file: Path | None = None, *, main_process: bool = True) -> None:
    """Log to stderr (INFO on the main process, WARNING elsewhere) and, on the main process, to ``log_file``."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file is not None and main_process:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file))
    logging.basicConfig(
        level=logging.INFO if main_process else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=handlers,
        force=True,
    )
