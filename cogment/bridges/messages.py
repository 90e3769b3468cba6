"""The package's own `cogment_bridges` message classes (for the built-in settings).

The bridges otherwise take their message classes from the settings in use (a project's
generated module or this one), so a process may hold both: the project's copy of
cogment_bridges.proto is this file, compiled under the same name, and protobuf's descriptor
pool accepts a file twice when it is the same. A copy from another cogment version is not,
and loading both is refused with the error below.
"""

from __future__ import annotations

from types import ModuleType

from cogment.errors import ConfigurationError

PROTO_NAME = "cogment_bridges.proto"
PACKAGE = "cogment_bridges"
OTHER_COPY = (
    "this process already loaded another cogment_bridges.proto than the one of the installed "
    "cogment (a project written by another cogment version?): copy the installed one into "
    "the project again (`cogment gym init` writes it) and re-run `cogment generate` ({error})"
)

_module: ModuleType | None = None


def module() -> ModuleType:
    """The generated module of cogment/bridges/cogment_bridges.proto.

    Raises:
        ConfigurationError: a different file of the same name is already loaded.
    """
    global _module
    if _module is None:
        try:
            from cogment.bridges import cogment_bridges_pb2
        except TypeError as error:  # "Couldn't build proto file into descriptor pool"
            raise ConfigurationError(OTHER_COPY.format(error=error)) from None
        _module = cogment_bridges_pb2
    return _module
