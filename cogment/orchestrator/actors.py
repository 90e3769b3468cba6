"""`Actor`: one actor of a trial, as the orchestrator keeps it."""

from __future__ import annotations

from typing import Any, Optional

from cogment.api import common_pb2
from cogment.settings import ActorClass


class Actor:
    """One actor of a trial: an agent (reached through `link`), or a human slot."""

    __slots__ = (
        "actor_class",
        "config",
        "endpoint",
        "id",
        "index_in_class",
        "link",
        "started",
    )

    def __init__(
        self,
        actor_id: int,
        actor_class: ActorClass,
        index_in_class: int,
        params: common_pb2.ActorParams,
    ) -> None:
        self.id = actor_id
        self.actor_class = actor_class
        self.index_in_class = index_in_class
        self.endpoint: str = params.endpoint
        # None when the parameters give no config: it then stays off the wire
        self.config: Optional[common_pb2.ActorConfig] = (
            params.config if params.HasField("config") else None
        )
        self.link: Any = None  # its AgentTransport, once the trial connected (agents only)
        self.started = False

    def describe(self) -> str:
        return f"agent actor {self.id} (class {self.actor_class.id!r}) at {self.endpoint}"
