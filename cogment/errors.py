"""The exceptions cogment raises.

* CogmentError: the root of every error cogment raises.
    * ConfigurationError: a project (cogment.yaml, cog_settings, arguments) is malformed.
    * LifecycleError: an object used out of its lifecycle (a server or orchestrator started
      twice or used once stopped, a connection used once closed).
    * StatusError: a failure with its gRPC status (`code`, `message`, `details`). Servers
      raise it where a call goes wrong and answer the call with it at one boundary
      (`cogment.boundary`).
        * CogmentRpcError: a gRPC call failed with this status.
            * TrialError: a trial ended because of a failure (service error, unreachable...).
    * TrialEndedError: an operation was attempted on a trial that is already over.
    * DatalogError: a datalog store cannot be opened, read or written.
"""

from __future__ import annotations

import re
from typing import Any

import grpc


class CogmentError(Exception):
    """The root of every error cogment raises."""


class ConfigurationError(CogmentError):
    """A project, its cogment.yaml or its settings are malformed."""


class TrialEndedError(CogmentError):
    """The trial is over; nothing more can be done with it."""


class DatalogError(CogmentError):
    """A datalog store cannot be opened, read or written (not a datalog, a newer schema,
    an unknown trial, a failing disk)."""


class LifecycleError(CogmentError):
    """An object was used out of its lifecycle (started twice, used once stopped or closed);
    the message names the object and the misuse."""


class StatusError(CogmentError):
    """A failure and the gRPC status that says it (`code`, `message`, `details`)."""

    def __init__(self, code: grpc.StatusCode, message: str, details: Any = None) -> None:
        super().__init__(code, message, details)
        self._code = code
        self._message = message
        self._details = details

    @property
    def code(self) -> grpc.StatusCode:
        return self._code

    @property
    def message(self) -> str:
        return self._message

    @property
    def details(self) -> Any:
        return self._details

    def __str__(self) -> str:
        return f"{self._code.name}: {self._message}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self._code.name}, message={self._message!r})"

    def __reduce__(self) -> Any:
        return (type(self), (self._code, self._message, self._details))


class CogmentRpcError(StatusError):
    """A gRPC call failed; `code` and `message` are its status."""


class TrialError(CogmentRpcError):
    """A trial was ended by a failure; `message` says which service failed and why."""


# status codes with a more specific class than CogmentRpcError (ABORTED: the orchestrator ended
# the trial because one of its services failed)
_ERROR_CLASSES: dict[grpc.StatusCode, type[CogmentRpcError]] = {
    grpc.StatusCode.ABORTED: TrialError,
}


# How the orchestrator words a trial's end in a status message; the client reads them back.
TRIAL_NOT_FOUND = "trial {trial_id} not found"  # NOT_FOUND: never known, or long forgotten
TRIAL_ENDED = "trial {trial_id} has ended: {reason}"  # NOT_FOUND, later calls, normal end
TRIAL_FAILED = "trial {trial_id} failed: {reason}"  # NOT_FOUND, later calls, after a failure
TRIAL_ABORTED = "trial {trial_id} ended: {reason}"  # ABORTED, the calls waiting at the failure
WRONG_SLOT_CLASS = "trial {trial_id}: actor {actor_id} is of class {slot!r}, not {requested!r}"
"""A client asked for a slot of another class (the orchestrator refuses it, or the client)."""
_WRONG_SLOT_CLASS = re.compile(r"^trial \S+: actor -?\d+ is of class .+, not .+$")


def is_wrong_slot(message: str) -> bool:
    """Whether a status message is `WRONG_SLOT_CLASS`."""
    return _WRONG_SLOT_CLASS.match(message) is not None


_TRIAL_END = re.compile(r"^trial \S+ (has ended|failed|ended): (.*)$", re.DOTALL)


def trial_end_reason(message: str) -> str:
    """The reason in one of the messages above (the message itself otherwise)."""
    match = _TRIAL_END.match(message)
    return match.group(2) if match else message


def is_unknown_trial(code: grpc.StatusCode, message: str) -> bool:
    """Whether a status says the orchestrator does not know the trial at all (no record of
    its end): it never ran there, or the orchestrator restarted since."""
    return (
        code is grpc.StatusCode.NOT_FOUND
        and re.fullmatch(r"trial \S+ not found", message) is not None
    )


def is_trial_failure(code: grpc.StatusCode, message: str) -> bool:
    """Whether a status says the trial ended because a service failed."""
    if code is grpc.StatusCode.ABORTED:
        return True
    match = _TRIAL_END.match(message)
    return code is grpc.StatusCode.NOT_FOUND and match is not None and match.group(1) == "failed"


def from_rpc_error(error: grpc.RpcError) -> CogmentRpcError:
    """Translates a grpc.RpcError into the matching cogment exception."""
    code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
    details = error.details() if hasattr(error, "details") else str(error)
    if not isinstance(code, grpc.StatusCode):
        code = grpc.StatusCode.UNKNOWN
    return _ERROR_CLASSES.get(code, CogmentRpcError)(code, details or "", None)
