"""The optional extras the bridges need, and the error naming the one that is missing."""

from __future__ import annotations

import importlib

MISSING_EXTRA = (
    '{feature} needs {missing}, which {is_are} not installed: pip install "cogment[{extra}]"'
)
EXTRAS = {
    "gym": ("gymnasium", "numpy"),
    "pettingzoo": ("pettingzoo", "gymnasium", "numpy"),
}


def require(extra: str, feature: str) -> None:
    """Imports the packages of `extra`.

    Raises:
        ImportError: naming the missing packages and `pip install "cogment[<extra>]"`.
    """
    missing = []
    for name in EXTRAS[extra]:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise ImportError(
            MISSING_EXTRA.format(
                feature=feature,
                missing=" and ".join(missing),
                is_are="is" if len(missing) == 1 else "are",
                extra=extra,
            ),
            name=missing[0],
        )
