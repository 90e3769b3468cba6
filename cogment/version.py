"""The versions this package reports in every Version RPC."""

from __future__ import annotations

from importlib import metadata

API_VERSION = "v0.5"  # the Cogment wire protocol spoken; equals .cogment-api.yaml


def _package_version() -> str:
    try:
        return metadata.version("cogment")
    except metadata.PackageNotFoundError:  # running from a source tree that is not installed
        return "0.5.0"


__version__ = _package_version()


def version_entries(user_versions: dict[str, str] | None = None) -> list[tuple[str, str]]:
    """The (name, version) pairs a Version RPC answers with."""
    entries = [("cogment-api", API_VERSION), ("cogment-py", __version__)]
    entries += [(str(k), str(v)) for k, v in (user_versions or {}).items()]
    return entries
