"""The values the Cogment protocol gives a meaning to (see PROTOCOL.md), named once."""

ENVIRONMENT_ID = -1
"""The id that addresses the environment in messages (`sender_id`, `receiver_id`)."""

NO_ACTOR_ID = -1
"""The actor id of a client without a slot (`TrialStartReply.actor_id`), and of a client
that only watches a trial's end on `ActionStream`."""

CURRENT_TICK = -1
"""A feedback's `tick_id` meaning "the current tick"."""

HUMAN_ENDPOINT = "human"
"""The endpoint of an actor slot that a client (a human front end) takes."""

UNLIMITED_MESSAGES = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]
"""gRPC options lifting the message-size limits (observations of any size)."""

DEFAULT_MAX_MESSAGE_MB = 64.0
"""The largest message (MiB) a server of ours accepts by default: the orchestrator's port for
clients and the services' ports (a Decide request carries a whole observation: 16 MiB
observations pass). What it sends is not limited."""


def message_size_options(max_receive_mb: "float | None") -> list[tuple[str, int]]:
    """gRPC options for a server that receives at most `max_receive_mb` MiB a message (None:
    no limit) and sends messages of any size."""
    limit = -1 if max_receive_mb is None else int(max_receive_mb * 1024 * 1024)
    return [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", limit)]


MAX_ACTORS = 10_000
"""The most actors a trial may have (what a service or the orchestrator accepts)."""

SESSION_ID_METADATA = "session_id"
"""The gRPC metadata key of a client's session id, on every call it makes."""

ACTOR_CLASS_METADATA = "actor_class"
"""The gRPC metadata key of the class a client plays, on `Join`: an orchestrator that reads
it refuses a slot of another class before taking it (a 0.5 orchestrator ignores it)."""

FAST_RECONNECT = [
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
]
"""gRPC options bounding a channel's reconnection backoff to 1 s (gRPC's default grows to
120 s): a restarted orchestrator or service is reached again within about a second."""
