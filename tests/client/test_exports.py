"""The public surface of cogment.client."""

from __future__ import annotations

import cogment.client


def test_exported_names() -> None:
    assert set(cogment.client.__all__) == {
        "DEFAULT_HEARTBEAT_INTERVAL",
        "ActionResult",
        "ClientTrial",
        "Connection",
        "TrialService",
    }
    for name in cogment.client.__all__:
        assert getattr(cogment.client, name) is not None
    public = {n for n in vars(cogment.client) if not n.startswith("_")}
    modules = {
        "connection",
        "contact",
        "ending",
        "heartbeat",
        "interface",
        "routing",
        "slot",
        "stream",
        "trial",
    }
    assert public - modules == set(cogment.client.__all__)


def test_internal_helpers_are_private() -> None:
    for name in ("call", "check_open", "forget", "open_stream", "translate", "heartbeat"):
        assert not hasattr(cogment.client.Connection, name), name
    assert not hasattr(cogment.client.ClientTrial, "human_config")  # now `config`, decoded
    for name in ("id", "is_over", "latest_reward", "latest_messages", "session_id", "connection"):
        assert getattr(cogment.client.ClientTrial, name).__doc__, name
