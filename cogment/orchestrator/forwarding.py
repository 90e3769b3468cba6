"""Calls about a trial another orchestrator owns, forwarded to it and answered as it answers.

A client behind a plain TCP load balancer (or a 0.5 client that always calls one
orchestrator) may ask any orchestrator about any trial; the trial's id names its owner
(`cogment.ownership`). The call goes to the owner with the client's metadata (its session,
its actor class) and its deadline; the owner's reply, or its status, goes back unchanged.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any, Callable, Optional

import grpc

from cogment.errors import StatusError
from cogment.ownership import FORWARDED_BY, owner_of

from .calls import consume

log = logging.getLogger("cogment.orchestrator")

UNREACHABLE_OWNER = (
    "trial {trial_id} is owned by the orchestrator at {owner}, which cannot be reached: {details}"
)
NOT_AT_OWNER = "trial {trial_id} not found: its owner {owner} does not know it"
_SERVICE = "/cogment.Trial/"


def _metadata(context: grpc.aio.ServicerContext, me: str) -> tuple[tuple[str, Any], ...]:
    """The client's metadata to pass on (not gRPC's own), naming this orchestrator."""
    kept = tuple(
        (key, value)
        for key, value in context.invocation_metadata() or ()
        if not key.startswith((":", "grpc-")) and key != FORWARDED_BY
    )
    return (*kept, (FORWARDED_BY, me))


class Forwarder:
    """Forwards calls about trials owned by other orchestrators.

    Args:
        me: the address this orchestrator advertises (its trials' owner).
        channel: the channel to an orchestrator's `host:port`.
        secure: whether orchestrators are called over TLS (like this one serves).
    """

    def __init__(self, me: str, channel: Callable[[str], grpc.aio.Channel], secure: bool) -> None:
        self._me = me
        self._channel = channel
        self._scheme = "grpcs://" if secure else "grpc://"

    def owner(self, trial_id: str, context: grpc.aio.ServicerContext) -> Optional[str]:
        """The other orchestrator that owns `trial_id`; None when this one should answer
        (it owns the trial, the id names no owner, or the call was forwarded already)."""
        owner = owner_of(trial_id)
        if owner is None or owner == self._me:
            return None
        for key, _ in context.invocation_metadata() or ():
            if key == FORWARDED_BY:  # forwarded to us already: never a second hop
                return None
        return owner

    def _unreachable(self, trial_id: str, owner: str, error: grpc.aio.AioRpcError) -> StatusError:
        code = error.code()
        if code is grpc.StatusCode.UNAVAILABLE:
            details = UNREACHABLE_OWNER.format(
                trial_id=trial_id, owner=owner, details=error.details()
            )
            return StatusError(code, details)
        return StatusError(code, error.details() or "")

    async def unary(
        self, owner: str, method: str, request: Any, context: grpc.aio.ServicerContext
    ) -> bytes:
        """The owner's reply to `method(request)`, as bytes; its status as a StatusError."""
        call = self._channel(self._scheme + owner).unary_unary(
            _SERVICE + method,
            request_serializer=type(request).SerializeToString,
            response_deserializer=None,
        )
        try:
            reply: bytes = await call(
                request, timeout=context.time_remaining(), metadata=_metadata(context, self._me)
            )
        except grpc.aio.AioRpcError as error:
            raise self._unreachable(request.trial_id, owner, error) from None
        return reply

    async def stream(
        self,
        owner: str,
        first: Any,
        requests: AsyncIterator[Any],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[bytes]:
        """Relays an ActionStream whose first request is `first` to the owner: the
        client's requests to it, its replies (as bytes) back, its end as the stream's."""
        call = self._channel(self._scheme + owner).stream_stream(
            _SERVICE + "ActionStream",
            request_serializer=type(first).SerializeToString,
            response_deserializer=None,
        )
        upstream = call(metadata=_metadata(context, self._me))  # type: ignore[call-arg]

        async def pump() -> None:
            await upstream.write(first)
            async for request in requests:
                await upstream.write(request)
            await upstream.done_writing()

        writer = asyncio.ensure_future(pump())
        writer.add_done_callback(consume)
        try:
            async for reply in upstream:
                yield reply
        except grpc.aio.AioRpcError as error:
            raise self._unreachable(first.trial_id, owner, error) from None
        finally:
            writer.cancel()
            upstream.cancel()
