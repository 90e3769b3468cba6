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
