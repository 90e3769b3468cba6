"""Gymnasium spaces and their values as `cogment_bridges` messages, exactly, both ways.

* `space_to_proto(space, out)` / `space_from_proto(message)`: a space's description
  (`Space`): Discrete (with `start`), Box (any dtype and shape), MultiBinary, MultiDiscrete,
  Dict and Tuple, nested. `check_space(space)` refuses anything else (Text, Graph, Sequence,
  ...) with an `UnsupportedSpaceError` naming it.
* `encode(space, value, out)` / `decode(space, message)`: a value of a space (`Value`). A
  decoded value equals the encoded one, with the same types and dtypes (Discrete: a Python
  int stays an int, a numpy integer becomes one of the space's dtype; Box(shape=()): a numpy
  scalar stays one; Dict: a dict in the space's key order; Tuple: a tuple). Decoding is
  lenient where it cannot lose anything: an array of another dtype that casts within its
  kind, a list for a Box, an integer array of one element for a Discrete.
* `encode_any(value, out)` / `decode_any(message)`: the same wire format without a space
  (info dicts; a policy's actions): None, bool, int, float, str, bytes, numpy arrays and
  scalars, and dicts (str keys), lists and tuples of them.

Messages are filled in place (`out`), so the same code serves any generated class of the
`cogment_bridges` messages. Arrays travel as dtype name, shape and little-endian C-order
bytes; what arrives from the network is checked (dtype, shape, size) before use.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping, Sequence
from typing import Any, Optional

import numpy as np
from gymnasium import spaces as gs

from cogment.errors import ConfigurationError

SUPPORTED = "Discrete, Box, MultiBinary, MultiDiscrete, Dict and Tuple"
UNSUPPORTED = "{where}: {space} is not supported on the wire (supported: {supported})"
MAX_NDIM = 32
# numpy dtypes that travel as raw bytes (by name, so both ends agree whatever their byte order)
DTYPES = frozenset(
    np.dtype(t).name
    for t in (
        np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32,
        np.uint64, np.float16, np.float32, np.float64, np.complex64, np.complex128,
    )
)  # fmt: skip
_INT64 = (-(2**63), 2**63 - 1)
_BIG_ENDIAN_HOST = sys.byteorder == "big"


class UnsupportedSpaceError(ConfigurationError):
    """A space that cannot travel on the wire (its message names it and where it is)."""


# --------------------------------------------------------------------------- arrays


def _little_endian(array: np.ndarray) -> np.ndarray:
    order = array.dtype.byteorder
    if order == ">" or (order == "=" and _BIG_ENDIAN_HOST):
        return array.astype(array.dtype.newbyteorder("<"))
    return array


def array_to_proto(value: Any, out: Any, where: str = "value", scalar: bool = False) -> None:
    """Fills an `Array` message with a numpy array (or scalar when `scalar`)."""
    array = np.asarray(value)
    name = array.dtype.name
    if name not in DTYPES:
        raise TypeError(f"{where}: arrays of dtype {array.dtype} cannot travel (numbers only)")
    out.dtype = name
    if array.ndim:
        out.shape.extend(array.shape)
    out.data = _little_endian(array).tobytes()
    if scalar:
        out.scalar = True


_WIRE_DTYPES = {name: np.dtype(name).newbyteorder("<") for name in DTYPES}


def _dtype(name: str, where: str) -> np.dtype[Any]:
    dtype = _WIRE_DTYPES.get(name)
    if dtype is None:
        raise ValueError(f"{where}: unknown array dtype {name!r}")
    return dtype


def array_from_proto(message: Any, where: str = "value") -> Any:
    """The numpy array (a writable copy) or scalar an `Array` message holds.

    Raises:
        ValueError: a dtype, shape or size that does not add up.
    """
    dtype = _dtype(message.dtype, where)
    shape = tuple(message.shape)
    if len(shape) > MAX_NDIM or any(d < 0 for d in shape):
        raise ValueError(f"{where}: invalid array shape {list(shape)}")
    data = message.data
    if math.prod(shape) * dtype.itemsize != len(data):
        raise ValueError(
            f"{where}: {len(data)} bytes for an array of {message.dtype} of shape {list(shape)}"
        )
    array = np.frombuffer(data, dtype=dtype).reshape(shape)
    if _BIG_ENDIAN_HOST:
        array = array.astype(array.dtype.newbyteorder("="))
    if message.scalar:
        if shape:
            raise ValueError(f"{where}: a scalar of shape {list(shape)}")
        return array[()]
    return array.copy()


# --------------------------------------------------------------------------- spaces


def _describe(space: Any) -> str:
    return type(space).__name__ if isinstance(space, gs.Space) else repr(space)


def check_space(space: Any, where: str = "space") -> None:
    """Raises UnsupportedSpaceError for a space (or a part of it) that cannot travel."""
    if isinstance(space, gs.Dict):
        for key, sub in space.spaces.items():
            if not isinstance(key, str):
                raise UnsupportedSpaceError(
                    f"{where}: Dict keys must be strings to travel, got {key!r}"
                )
            check_space(sub, f"{where}[{key!r}]")
    elif isinstance(space, gs.Tuple):
        for i, sub in enumerate(space.spaces):
            check_space(sub, f"{where}[{i}]")
    elif isinstance(space, gs.Box):
        if np.dtype(space.dtype).name not in DTYPES:
            raise UnsupportedSpaceError(f"{where}: Box of dtype {space.dtype} cannot travel")
    elif not isinstance(space, (gs.Discrete, gs.MultiBinary, gs.MultiDiscrete)):
        raise UnsupportedSpaceError(
            UNSUPPORTED.format(where=where, space=_describe(space), supported=SUPPORTED)
        )


def _bound_to_proto(bound: np.ndarray, out: Any) -> None:
    first = bound.flat[0] if bound.size else None
    if first is not None and np.all(bound == first):
        array_to_proto(bound.reshape(-1)[:1].reshape(()), out)  # one element for all cells
    else:
        array_to_proto(bound, out)


def space_to_proto(space: gs.Space[Any], out: Any, where: str = "space") -> None:
    """Fills a `Space` message with the description of `space`.

    Raises:
        UnsupportedSpaceError: for a space (or a part of it) that cannot travel.
    """
    check_space(space, where)
    if isinstance(space, gs.Discrete):
        out.discrete.n = int(space.n)
        out.discrete.start = int(space.start)
        out.discrete.dtype = space.dtype.name if space.dtype is not None else "int64"
    elif isinstance(space, gs.Box):
        box = out.box
        box.dtype = np.dtype(space.dtype).name
        box.shape.extend(space.shape)
        _bound_to_proto(np.asarray(space.low), box.low)
        _bound_to_proto(np.asarray(space.high), box.high)
    elif isinstance(space, gs.MultiBinary):
        out.multi_binary.shape.extend(space.shape)
        out.multi_binary.flat = isinstance(space.n, int)
    elif isinstance(space, gs.MultiDiscrete):
        array_to_proto(space.nvec, out.multi_discrete.nvec)
        array_to_proto(space.start, out.multi_discrete.start)
    elif isinstance(space, gs.Dict):
        for key, sub in space.spaces.items():
            item = out.dict.items.add()
            item.key = key
            space_to_proto(sub, item.space, f"{where}[{key!r}]")
    elif isinstance(space, gs.Tuple):
        out.tuple.SetInParent()
        for i, sub in enumerate(space.spaces):
            space_to_proto(sub, out.tuple.spaces.add(), f"{where}[{i}]")


def _bound_from_proto(message: Any, shape: tuple[int, ...], dtype: Any, where: str) -> Any:
    bound = array_from_proto(message, where)
    if bound.shape == shape:
        return bound
    if bound.size == 1:
        return np.full(shape, bound.reshape(()), dtype=dtype)
    raise ValueError(f"{where}: a bound of shape {list(bound.shape)} for shape {list(shape)}")


def space_from_proto(message: Any, where: str = "space") -> gs.Space[Any]:
    """The Gymnasium space a `Space` message describes.

    Raises:
        ValueError: the description is malformed or empty.
    """
    kind = message.WhichOneof("kind")
    if kind == "discrete":
        d = message.discrete
        dtype = _dtype(d.dtype or "int64", f"{where}.dtype")
        try:
            return gs.Discrete(d.n, start=d.start, dtype=dtype)  # type: ignore[call-arg]
        except TypeError:  # gymnasium < 1.2: Discrete has no dtype (always int64)
            return gs.Discrete(d.n, start=d.start)
    if kind == "box":
        box = message.box
        dtype = _dtype(box.dtype, f"{where}.dtype")
        shape = tuple(box.shape)
        low = _bound_from_proto(box.low, shape, dtype, f"{where}.low")
        high = _bound_from_proto(box.high, shape, dtype, f"{where}.high")
        return gs.Box(low=low, high=high, shape=shape, dtype=dtype)  # type: ignore[arg-type]
    if kind == "multi_binary":
        shape = tuple(message.multi_binary.shape)
        return gs.MultiBinary(shape[0] if message.multi_binary.flat and len(shape) == 1 else shape)
    if kind == "multi_discrete":
        md = message.multi_discrete
        nvec = array_from_proto(md.nvec, f"{where}.nvec")
        start = array_from_proto(md.start, f"{where}.start")
        return gs.MultiDiscrete(nvec, dtype=nvec.dtype, start=start)
    if kind == "dict":
        return gs.Dict(
            {
                item.key: space_from_proto(item.space, f"{where}[{item.key!r}]")
                for item in message.dict.items
            }
        )
    if kind == "tuple":
        return gs.Tuple(
            [space_from_proto(s, f"{where}[{i}]") for i, s in enumerate(message.tuple.spaces)]
        )
    raise ValueError(f"{where}: no space described")


# --------------------------------------------------------------------------- values of a space


def _array_for(space: Any, value: Any, where: str) -> np.ndarray:
    """`value` as an array of the space's shape and dtype (cast within its kind)."""
    array = np.asarray(value)
    if array.shape != space.shape:
        raise ValueError(
            f"{where}: expected an array of shape {space.shape}, got shape {array.shape}"
        )
    if array.dtype != space.dtype:
        if not np.can_cast(array.dtype, space.dtype, "same_kind"):
            raise ValueError(f"{where}: expected {space.dtype} values, got {array.dtype}")
        array = array.astype(space.dtype)
    return array


def _integer(value: Any, where: str) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer, np.ndarray)):
        raise ValueError(f"{where}: expected an integer, got {type(value).__name__} {value!r}")
    if isinstance(value, np.ndarray):
        if value.size != 1 or value.dtype.kind not in "iu":
            raise ValueError(f"{where}: expected an integer, got an array of shape {value.shape}")
        value = value.reshape(())[()]
    return int(value)


def encode(space: gs.Space[Any], value: Any, out: Any, where: str = "value") -> None:
    """Fills a `Value` message with `value`, an element of `space`.

    Raises:
        ValueError: `value` does not have the structure, shape or kind of dtype of `space`
            (a Discrete value out of range too).
    """
    if isinstance(space, gs.Discrete):
        number = _integer(value, where)
        start = int(space.start)
        if not start <= number < start + int(space.n):
            raise ValueError(f"{where}: {number} is not in {space}")
        if isinstance(value, int):
            out.integer = number
        else:  # a numpy integer stays one (what Discrete.sample() returns)
            array_to_proto(np.dtype(space.dtype).type(number), out.array, where, scalar=True)
    elif isinstance(space, (gs.Box, gs.MultiBinary, gs.MultiDiscrete)):
        scalar = isinstance(value, np.generic)  # Box(shape=()) samples are numpy scalars
        array_to_proto(_array_for(space, value, where), out.array, where, scalar=scalar)
    elif isinstance(space, gs.Dict):
        if not isinstance(value, Mapping):
            raise ValueError(f"{where}: expected a dict, got {type(value).__name__}")
        if len(value) != len(space.spaces) or any(k not in value for k in space.spaces):
            raise ValueError(f"{where}: expected the keys {list(space.spaces)}, got {list(value)}")
        items = out.dict.items
        out.dict.SetInParent()
        for key, sub in space.spaces.items():
            item = items.add()
            item.key = key
            encode(sub, value[key], item.value, f"{where}[{key!r}]")
    elif isinstance(space, gs.Tuple):
        if not isinstance(value, Sequence) or isinstance(value, (str, bytes)):
            raise ValueError(f"{where}: expected a tuple, got {type(value).__name__}")
        if len(value) != len(space.spaces):
            raise ValueError(f"{where}: expected {len(space.spaces)} items, got {len(value)}")
        out.tuple.SetInParent()
        for i, (sub, item) in enumerate(zip(space.spaces, value)):
            encode(sub, item, out.tuple.items.add(), f"{where}[{i}]")
    else:
        check_space(space, where)


def decode(space: Optional[gs.Space[Any]], message: Any, where: str = "value") -> Any:
    """The value a `Value` message holds, as an element of `space` (`decode_any` for None).

    Raises:
        ValueError: the message does not fit `space`.
    """
    if space is None:
        return decode_any(message, where)
    kind = message.WhichOneof("kind")
    if isinstance(space, gs.Discrete):
        if kind == "integer":
            return message.integer  # a Python int, as the env gave it
        if kind != "array":
            raise ValueError(f"{where}: expected an integer for {space}, got {kind or 'nothing'}")
        number = _integer(array_from_proto(message.array, where), where)
        return space.dtype.type(number) if space.dtype is not None else np.int64(number)
    if isinstance(space, (gs.Box, gs.MultiBinary, gs.MultiDiscrete)):
        if kind == "array":
            value = array_from_proto(message.array, where)
        elif kind in ("list", "tuple", "integer", "real", "boolean"):
            value = decode_any(message, where)
        else:
            raise ValueError(f"{where}: expected an array for {space}, got {kind or 'nothing'}")
        array = _array_for(space, value, where)
        return array[()] if isinstance(value, np.generic) else array
    if isinstance(space, gs.Dict):
        if kind != "dict":
            raise ValueError(f"{where}: expected a dict for a Dict space, got {kind or 'nothing'}")
        items = {item.key: item.value for item in message.dict.items}
        if len(items) != len(space.spaces) or any(k not in items for k in space.spaces):
            raise ValueError(f"{where}: expected the keys {list(space.spaces)}, got {list(items)}")
        return {k: decode(sub, items[k], f"{where}[{k!r}]") for k, sub in space.spaces.items()}
    if isinstance(space, gs.Tuple):
        if kind not in ("tuple", "list"):
            raise ValueError(
                f"{where}: expected a tuple for a Tuple space, got {kind or 'nothing'}"
            )
        values = getattr(message, kind).items
        if len(values) != len(space.spaces):
            raise ValueError(f"{where}: expected {len(space.spaces)} items, got {len(values)}")
        return tuple(
            decode(sub, item, f"{where}[{i}]")
            for i, (sub, item) in enumerate(zip(space.spaces, values))
        )
    check_space(space, where)
    raise AssertionError("unreachable")


# --------------------------------------------------------------------------- any value


def encode_any(value: Any, out: Any, where: str = "value") -> None:
    """Fills a `Value` message with a value of one of the supported Python types.

    Raises:
        TypeError: for a value (or a part of it) of another type.
    """
    if value is None:
        return
    if isinstance(value, bool):
        out.boolean = value
    elif isinstance(value, int):
        if not _INT64[0] <= value <= _INT64[1]:
            raise TypeError(f"{where}: {value} does not fit in 64 bits")
        out.integer = value
    elif isinstance(value, float):
        out.real = value
    elif isinstance(value, str):
        out.text = value
    elif isinstance(value, bytes):
        out.raw = value
    elif isinstance(value, np.ndarray):
        array_to_proto(value, out.array, where)
    elif isinstance(value, (np.number, np.bool_)):
        array_to_proto(value, out.array, where, scalar=True)
    elif isinstance(value, Mapping):
        out.dict.SetInParent()
        for key, item_value in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{where}: dict keys must be strings, got {key!r}")
            item = out.dict.items.add()
            item.key = key
            encode_any(item_value, item.value, f"{where}[{key!r}]")
    elif isinstance(value, (list, tuple)):
        target = out.tuple if isinstance(value, tuple) else out.list
        target.SetInParent()
        for i, item_value in enumerate(value):
            encode_any(item_value, target.items.add(), f"{where}[{i}]")
    else:
        raise TypeError(f"{where}: values of type {type(value).__name__} cannot travel")


def decode_any(message: Any, where: str = "value") -> Any:
    """The Python value a `Value` message holds (see `encode_any`)."""
    kind = message.WhichOneof("kind")
    if kind is None:
        return None
    if kind == "array":
        return array_from_proto(message.array, where)
    if kind == "dict":
        return {
            item.key: decode_any(item.value, f"{where}[{item.key!r}]")
            for item in message.dict.items
        }
    if kind == "tuple":
        return tuple(decode_any(v, f"{where}[{i}]") for i, v in enumerate(message.tuple.items))
    if kind == "list":
        return [decode_any(v, f"{where}[{i}]") for i, v in enumerate(message.list.items)]
    return getattr(message, kind)
