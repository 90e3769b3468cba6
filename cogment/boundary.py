"""Where our errors become gRPC statuses: the one boundary of every server we run.

A handler raises `cogment.errors.StatusError` where a call goes wrong; the decorators below
end the call with that status (`context.abort`). Anything else that escapes a handler is a
bug of ours: it is logged with its traceback and answered INTERNAL, never a bare UNKNOWN.

* `handler`: a synchronous servicer method (`cogment.GrpcServer`'s servicers).
* `stream_handler`: a synchronous servicer method that yields its replies (its streams).
* `async_handler`: a grpc.aio unary method (the orchestrator).
* `async_stream_handler`: a grpc.aio method that yields its replies.

`add_service` registers a servicer with request deserializers that turn bytes that are not
the request's message into `Malformed`, which the decorators (and `check_request`, for
streamed requests) answer with INVALID_ARGUMENT instead of gRPC's UNKNOWN and a traceback.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any, Callable, Optional, TypeVar

import grpc
from google.protobuf import message_factory
from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.message import DecodeError

from cogment.errors import StatusError

_LOG = logging.getLogger("cogment")
_Method = TypeVar("_Method", bound=Callable[..., Any])

MALFORMED = "the request is not a valid {type_name} ({size} bytes: {error})"


class Malformed:
    """What a request deserializer gives for bytes that do not parse as its message."""

    __slots__ = ("message",)

    def __init__(self, type_name: str, size: int, error: Exception) -> None:
        self.message = MALFORMED.format(type_name=type_name, size=size, error=error)


def check_request(request: Any) -> None:
    """Raises INVALID_ARGUMENT for a request that did not parse (see `add_service`)."""
    if isinstance(request, Malformed):
        raise StatusError(grpc.StatusCode.INVALID_ARGUMENT, request.message)


def _lenient(request_type: Any) -> Callable[[bytes], Any]:
    parse = request_type.FromString
    type_name = request_type.DESCRIPTOR.full_name

    def deserialize(data: bytes) -> Any:
        try:
            return parse(data)
        except DecodeError as error:
            return Malformed(type_name, len(data), error)

    return deserialize


def add_service(
    server: Any,
    service: ServiceDescriptor,
    servicer: Any,
    response_serializer: Optional[Callable[[Any], bytes]] = None,
) -> None:
    """Registers `servicer`'s methods for `service` on a grpc or grpc.aio server, as the
    generated `add_..._to_server` does, with lenient request deserializers;
    `response_serializer` (default: the reply's `SerializeToString`) may accept more."""
    handlers = {}
    for method in service.methods:
        request_type = message_factory.GetMessageClass(method.input_type)
        serializer = response_serializer or (
            message_factory.GetMessageClass(method.output_type).SerializeToString
        )
        kind = (method.client_streaming, method.server_streaming)
        make = {
            (False, False): grpc.unary_unary_rpc_method_handler,
            (True, False): grpc.stream_unary_rpc_method_handler,
            (False, True): grpc.unary_stream_rpc_method_handler,
            (True, True): grpc.stream_stream_rpc_method_handler,
        }[kind]
        handlers[method.name] = make(
            getattr(servicer, method.name),
            request_deserializer=_lenient(request_type),
            response_serializer=serializer,
        )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(service.full_name, handlers),)
    )
    if hasattr(server, "add_registered_method_handlers"):
        server.add_registered_method_handlers(service.full_name, handlers)


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
            check_request(request)
            return method(self, request, context)
        except Exception as error:
            status = status_of(method, error)
            context.abort(status.code, status.message)

    return wrapped  # type: ignore[return-value]


def stream_handler(method: _Method) -> _Method:
    """Ends a synchronous call that yields its replies, and raised StatusError, with its
    status."""

    @functools.wraps(method)
    def wrapped(self: Any, requests: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        try:
            yield from method(self, requests, context)
        except Exception as error:
            status = status_of(method, error)
            context.abort(status.code, status.message)

    return wrapped  # type: ignore[return-value]


async def _abort(
    context: grpc.aio.ServicerContext, method: Callable[..., Any], error: Exception
) -> None:
    """Ends a grpc.aio call with the status of `error` (re-raises a call ended already)."""
    if isinstance(error, grpc.aio.AbortError):
        raise error
    status = status_of(method, error)
    await context.abort(status.code, status.message)


def async_handler(method: _Method) -> _Method:
    """Ends a grpc.aio unary call that raised StatusError with its status."""

    @functools.wraps(method)
    async def wrapped(self: Any, request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            check_request(request)
            return await method(self, request, context)
        except Exception as error:
            await _abort(context, method, error)

    return wrapped  # type: ignore[return-value]


def async_stream_handler(method: _Method) -> _Method:
    """Ends a grpc.aio call that yields its replies, and raised StatusError, with its status
    (the method checks each streamed request with `check_request`)."""

    @functools.wraps(method)
    async def wrapped(
        self: Any, requests: Any, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[Any]:
        try:
            async for reply in method(self, requests, context):
                yield reply
        except Exception as error:
            await _abort(context, method, error)

    return wrapped  # type: ignore[return-value]
