"""The public surface: `cogment.__all__` and what the package exports agree."""

from __future__ import annotations

import types
from pathlib import Path

import yaml

import cogment


def test_all_is_sorted_and_complete() -> None:
    assert list(cogment.__all__) == sorted(cogment.__all__)
    assert len(set(cogment.__all__)) == len(cogment.__all__)
    for name in cogment.__all__:
        assert hasattr(cogment, name), f"cogment.__all__ names {name!r}, which does not exist"
    public = {
        name
        for name, value in vars(cogment).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert public <= set(cogment.__all__) | {"annotations"}, public - set(cogment.__all__)


def test_the_user_facing_names() -> None:
    expected = {
        "Agent", "Environment", "TrialHooks", "GrpcServer", "Trial", "Actor",
        "TrialParameters", "ActorParameters", "EnvironmentParameters",
        "ObservationTable", "ObservationsTable", "ActionsTable", "CogmentError", "ConfigurationError",
        "TrialError", "TrialEndedError", "CogmentRpcError", "__version__", "API_VERSION",
        "LogExporter", "DatalogError",
    }  # fmt: skip
    assert expected <= set(cogment.__all__)
    assert issubclass(cogment.TrialError, cogment.CogmentRpcError)
    assert issubclass(cogment.ConfigurationError, cogment.CogmentError)
    assert issubclass(cogment.DatalogError, cogment.CogmentError)


def test_the_datalog_names() -> None:
    import cogment.datalog

    assert list(cogment.datalog.__all__) == sorted(cogment.datalog.__all__)
    for name in cogment.datalog.__all__:
        assert hasattr(cogment.datalog, name), name
    assert {"open_datalog", "Sample", "ActorSteps", "RecordedTrial"} <= set(cogment.datalog.__all__)
    assert cogment.datalog.DatalogError is cogment.DatalogError


def test_api_version_matches_cogment_api_yaml() -> None:
    root = Path(cogment.__file__).resolve().parents[1]
    declared = yaml.safe_load((root / ".cogment-api.yaml").read_text())["cogment_api_version"]
    assert cogment.API_VERSION == declared == "v0.5"
