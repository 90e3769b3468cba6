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
    modules = {"connection", "ending", "heartbeat", "slot", "stream", "trial"}
    assert public - modules == set(cogment.client.__all__)
