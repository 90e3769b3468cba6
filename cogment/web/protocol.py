"""The WebSocket protocol of `cogment web`: its message types, error codes and limits.

This module is the one source of truth for the names on the wire: the bridge, the tests and
the README's protocol section all read them from here (a test checks that the README and
`cogment.js` name every one of them). It imports nothing from aiohttp.

Every frame is a JSON object (a text frame) with a `"type"`. A request may carry an `"id"`
(a string or a number); the frame answering it carries the same `"id"`.

Requests (tab -> bridge): `start`, `join`, `act`, `feedback`, `message`, `end`.
Events (bridge -> tab): `welcome` (first frame), `joined` (answers `start`/`join`), `tick`
(answers `act`), `sent` (answers `feedback`/`message`), `end` (the trial is over; answers
`end`, or comes by itself), `error` (answers any request, or says what was wrong with a frame).
"""

from __future__ import annotations

import re
from typing import Any, Optional, Union

PROTOCOL_VERSION = 1

# ---------------------------------------------------------------- requests (tab -> bridge)
START = "start"
JOIN = "join"
ACT = "act"
FEEDBACK = "feedback"
MESSAGE = "message"
END = "end"
REQUESTS = (START, JOIN, ACT, FEEDBACK, MESSAGE, END)

# ---------------------------------------------------------------- events (bridge -> tab)
WELCOME = "welcome"
JOINED = "joined"
TICK = "tick"
SENT = "sent"
ENDED = "end"  # the same word as the request: "end" answers "end", and tells any other end
ERROR = "error"
EVENTS = (WELCOME, JOINED, TICK, SENT, ENDED, ERROR)

# ---------------------------------------------------------------- error codes
BAD_JSON = "bad_json"  # not JSON, or not a JSON object, or a binary frame
FRAME_TOO_LARGE = "frame_too_large"  # a frame over the bridge's --max-frame
BAD_REQUEST = "bad_request"  # unknown type, a missing or mistyped key, an unknown receiver
BAD_DATA = "bad_data"  # an action/config/payload that does not fit its protobuf type
NO_TRIAL = "no_trial"  # act/feedback/message/end before start or join
IN_TRIAL = "in_trial"  # start/join while this tab plays a trial that is not over
ACTION_PENDING = "action_pending"  # act while this tab's previous action waits for its tick
SLOT_TAKEN = "slot_taken"  # join: another client holds that slot
NOT_FOUND = "not_found"  # join: no such trial, actor, or human slot
TRIAL_OVER = "trial_over"  # the trial has ended
TRIAL_FAILED = "trial_failed"  # a failing service (or a lost orchestrator) ended the trial
UNAVAILABLE = "orchestrator_unavailable"  # the bridge cannot reach the orchestrator
REFUSED = "refused"  # the orchestrator refused otherwise (e.g. a pre-trial hook said no)
ORIGIN_REFUSED = "origin_refused"  # the page is not the bridge's own (then the socket closes)
BRIDGE_FULL = "bridge_full"  # --max-tabs sockets are open (then the socket closes)
SESSION_IN_USE = "session_in_use"  # another open tab has this session id (then it closes)
INTERNAL = "internal"  # a bug in the bridge; the message says what
ERROR_CODES = (
    BAD_JSON,
    FRAME_TOO_LARGE,
    BAD_REQUEST,
    BAD_DATA,
    NO_TRIAL,
    IN_TRIAL,
    ACTION_PENDING,
    SLOT_TAKEN,
    NOT_FOUND,
    TRIAL_OVER,
    TRIAL_FAILED,
    UNAVAILABLE,
    REFUSED,
    ORIGIN_REFUSED,
    BRIDGE_FULL,
    SESSION_IN_USE,
    INTERNAL,
)
# codes after which the bridge closes the socket (with the close code below)
CLOSE_CODES = {ORIGIN_REFUSED: 1008, BRIDGE_FULL: 1013, SESSION_IN_USE: 1008}

# ---------------------------------------------------------------- limits and defaults
DEFAULT_PORT = 8080
DEFAULT_MAX_FRAME = 1024 * 1024  # bytes of one incoming frame; larger ones get an error
HARD_FRAME_FACTOR = 4  # frames over this many times max_frame are not even read (close 1009)
DEFAULT_MAX_TABS = 64
MAX_ID_LENGTH = 128  # characters of a request id
SESSION_PARAM = "session"  # ws://host/ws?session=ID resumes a session (to join its slot again)
WS_PATH = "/ws"
SESSION_ID_RE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")

RequestId = Union[str, int, float, None]


class ProtocolError(Exception):
    """What a tab sent is wrong; `code` is one of ERROR_CODES, the message says why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def error(
    code: str, message: str, request_id: RequestId = None, request: Optional[str] = None
) -> dict[str, Any]:
    """An `error` frame."""
    frame: dict[str, Any] = {"type": ERROR, "code": code, "message": message}
    if request is not None:
        frame["request"] = request
    if request_id is not None:
        frame["id"] = request_id
    return frame


def answer(frame: dict[str, Any], request_id: RequestId) -> dict[str, Any]:
    """`frame` with the id of the request it answers (when the request had one)."""
    if request_id is not None:
        frame["id"] = request_id
    return frame


def request_type(frame: Any) -> str:
    """The `type` of a request frame (a parsed JSON value).

    Raises:
        ProtocolError: not an object, no type, or an unknown type.
    """
    if not isinstance(frame, dict):
        raise ProtocolError(BAD_JSON, f"a frame must be a JSON object, got {_json_kind(frame)}")
    kind = frame.get("type")
    if kind not in REQUESTS:
        known = ", ".join(REQUESTS)
        if kind is None:
            raise ProtocolError(BAD_REQUEST, f"the frame has no 'type' (one of: {known})")
        raise ProtocolError(BAD_REQUEST, f"unknown request type {kind!r} (known: {known})")
    return str(kind)


def request_id(frame: dict[str, Any]) -> RequestId:
    """The request's `id` (None without one).

    Raises:
        ProtocolError: an id that is neither a string nor a number, or too long.
    """
    value = frame.get("id")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ProtocolError(
            BAD_REQUEST, f"'id' must be a string or a number, got {_json_kind(value)}"
        )
    if isinstance(value, str) and len(value) > MAX_ID_LENGTH:
        raise ProtocolError(BAD_REQUEST, f"'id' is longer than {MAX_ID_LENGTH} characters")
    return value


def field(
    frame: dict[str, Any],
    name: str,
    kinds: Union[type, tuple[type, ...]],
    *,
    required: bool = True,
    default: Any = None,
) -> Any:
    """`frame[name]`, checked to be of `kinds` (bool is never taken for a number).

    Raises:
        ProtocolError: missing (when required) or of another JSON type.
    """
    kind = frame.get("type")
    if name not in frame or frame[name] is None:
        if required:
            raise ProtocolError(BAD_REQUEST, f"{kind}: missing key {name!r}")
        return default
    value = frame[name]
    wanted = kinds if isinstance(kinds, tuple) else (kinds,)
    is_bool = isinstance(value, bool)
    if (is_bool and bool not in wanted) or not isinstance(value, wanted):
        names = " or ".join(_KIND_NAMES.get(k, k.__name__) for k in wanted)
        raise ProtocolError(
            BAD_REQUEST, f"{kind}: {name!r} must be {names}, got {_json_kind(value)}"
        )
    return value


_KIND_NAMES = {
    str: "a string",
    int: "an integer",
    float: "a number",
    dict: "an object",
    list: "a list",
    bool: "true or false",
}


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    if isinstance(value, str):
        return f"the string {value[:40]!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
