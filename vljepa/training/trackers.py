"""``report_to``: which Accelerate experiment trackers a VL-JEPA run logs to, checked before training starts.

Accepts what ``transformers.TrainingArguments.report_to`` accepts: one tracker name, several separated by
commas (``"tensorboard,wandb"``), ``"all"`` (every tracker Accelerate knows that is installed) or ``"none"``.
An unknown name or a tracker whose package is not installed is an error naming the fix, raised while the
arguments are parsed, not when the first metrics are logged.
"""

from __future__ import annotations

import difflib

# The pip package that provides each tracker, where its name differs from the tracker's.
_PIP_NAMES = {"comet_ml": "comet-ml"}


def known_trackers() -> list[str]:
    """The tracker names this Accelerate version knows (``accelerate.tracking.LOGGER_TYPE_TO_CLASS``)."""
    from accelerate.tracking import LOGGER_TYPE_TO_CLASS

    return sorted(LOGGER_TYPE_TO_CLASS)


def is_tracker_installed(name: str) -> bool:
    """Whether Accelerate can use ``name`` here (its own ``is_<name>_available`` check)."""
    import accelerate.tracking

    return bool(getattr(accelerate.tracking, f"is_{name}_available")())


def resolve_trackers(report_to: str) -> list[str]:
    """``report_to`` -> the list of tracker names to pass as ``Accelerator(log_with=...)`` ([] for "none")."""
    names = [part.strip() for part in report_to.split(",") if part.strip()]
    if names in ([], ["none"]):
        return []
    known = known_trackers()
    if names == ["all"]:
        return [name for name in known if is_tracker_installed(name)]
    for name in names:
        if name in ("all", "none"):
            raise ValueError(f"report_to={report_to!r}: 'all' and 'none' cannot be combined with tracker names")
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(
                f"report_to: unknown tracker {name!r}{hint}; Accelerate knows {', '.join(known)}, plus 'all' and "
                "'none'"
            )
        if not is_tracker_installed(name):
            raise ValueError(
                f"report_to: the {name!r} tracker is not installed: pip install {_PIP_NAMES.get(name, name)} "
                "(or choose another tracker, or 'none')"
            )
    return list(dict.fromkeys(names))
