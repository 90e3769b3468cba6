"""Where our errors become gRPC statuses: the one boundary of every server we run.

A handler raises `cogment.errors.StatusError` where a call goes wrong; the decorators below
end the call with that status (`context.abort`). Anything else that escapes a handler is a
bug of ours: it is logged with its traceback and answered INTERNAL, never a bare UNKNOWN.

* `handler`: a synchronous servicer method (`cogment.GrpcServer`'s servicers).
* `async_handler`: a grpc.aio unary method (the orchestrator).
* `async_stream_handler`: a grpc.aio method that yields its replies.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator
from typing import Any, Callable, TypeVar

import grpc

from cogment.errors import StatusError

_LOG = logging.getLogger("cogment")
_Method = TypeVar("_Method", bound=Callable[..., Any])


def status_of(method: Callable[..., Any], error: Exception) -> StatusError:
    """The status a call answers with for `error`: its own for a StatusError; INTERNAL for
    anything else, an unexpected exception of ours (logged with its traceback)."""
    if isinstance(error, StatusError):
        return error
    _LOG.error("cogment-py internal error in %s", method.__qualname__, exc_info=error)
    return StatusError(grpc.StatusCode.INTERNAL, f"cogment-py internal error: {error!r}")


def handler(method: _Method) -> _Method:
    """Ends a synchronous call that raised StatusError with its status."""

    @functools.wraps(method)
    def wrapped(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return method(self, request, context)
        except Exception as error:
            status = status_of(method, error)
            context.abort(status.code, status.message)

    return wrapped  # type: ignore[return-value]


def async_handler(method: _Method) -> _Method:
    """Ends a grpc.aio unary call that raised StatusError with its status."""

    @functools.wraps(method)
    async def wrapped(self: Any, request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            return await method(self, request, context)
        except grpc.aio.AbortError:  # the call was ended already
            raise
        except Exception as error:
            status = status_of(method, error)
            await context.abort(status.code, status.message)

    return wrapped  # type: ignore[return-value]


def async_stream_handler(method: _Method) -> _Method:
    """Ends a grpc.aio call that yields its replies, and raised StatusError, with its status."""

    @functools.wraps(method)
    async def wrapped(
        self: Any, requests: Any, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[Any]:
        try:
            async for reply in method(self, requests, context):
                yield reply
        except grpc.aio.AbortError:  # the call was ended already
            raise
        except Exception as error:
            status = status_of(method, error)
            await context.abort(status.code, status.message)

    return wrapped  # type: ignore[return-value]
