"""Spaces and their values on the wire: exact round trips, dtypes kept, clear refusals."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest

np = pytest.importorskip("numpy")
gs = pytest.importorskip("gymnasium.spaces")

from cogment.bridges import spaces  # noqa: E402
from cogment.bridges.messages import module  # noqa: E402
from cogment.errors import ConfigurationError  # noqa: E402

pb = module()

SPACES = {
    "discrete": gs.Discrete(7),
    "discrete_start": gs.Discrete(5, start=-3),
    "box_float32": gs.Box(-1.0, 1.0, (3, 2), np.float32),
    "box_float64_inf": gs.Box(np.array([-np.inf, 0.0]), np.array([np.inf, 1.0]), dtype=np.float64),
    "box_uint8_image": gs.Box(0, 255, (6, 5, 3), np.uint8),
    "box_int16": gs.Box(-300, 300, (4,), np.int16),
    "box_int64": gs.Box(-(2**40), 2**40, (2, 2), np.int64),
    "box_bool_scalar": gs.Box(0, 1, (), np.bool_),
    "box_float16": gs.Box(-2.0, 2.0, (3,), np.float16),
    "multi_binary": gs.MultiBinary(5),
    "multi_binary_2d": gs.MultiBinary([2, 3]),
    "multi_discrete": gs.MultiDiscrete([3, 4, 5]),
    "multi_discrete_start": gs.MultiDiscrete(
        np.array([[2, 3], [4, 5]]), start=np.array([[-1, 0], [1, 2]])
    ),
    "multi_discrete_int32": gs.MultiDiscrete([2, 9], dtype=np.int32),
    "dict": gs.Dict({"z": gs.Discrete(3), "a": gs.Box(0, 1, (2,), np.float32)}),
    "tuple": gs.Tuple([gs.Discrete(2), gs.MultiBinary(3)]),
    "nested": gs.Dict(
        {
            "pos": gs.Box(-5, 5, (2,), np.float64),
            "inventory": gs.Tuple(
                [gs.Discrete(4, start=1), gs.Dict({"k": gs.MultiDiscrete([2, 2])})]
            ),
            "flags": gs.MultiBinary(4),
        }
    ),
}


with contextlib.suppress(TypeError):  # gymnasium >= 1.2: Discrete spaces have a dtype
    SPACES["discrete_int32"] = gs.Discrete(4, dtype=np.int32)  # type: ignore[call-arg]


def same(a: Any, b: Any) -> bool:
    """Exact equality, types and dtypes included."""
    if type(a) is not type(b):
        return False
    if isinstance(a, np.ndarray):
        return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b, equal_nan=True)
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, np.generic):
        return a.dtype == b.dtype and a == b
    return bool(a == b)


def wire(message: Any) -> Any:
    return type(message).FromString(message.SerializeToString())


@pytest.mark.parametrize("name", sorted(SPACES))
def test_space_descriptions_round_trip(name: str) -> None:
    space = SPACES[name]
    described = pb.Space()
    spaces.space_to_proto(space, described)
    back = spaces.space_from_proto(wire(described))
    assert back == space
    assert type(back) is type(space)
    assert back.dtype == space.dtype


@pytest.mark.parametrize("name", sorted(SPACES))
def test_random_samples_round_trip_exactly(name: str) -> None:
    space = SPACES[name]
    space.seed(7)
    for _ in range(25):
        value = space.sample()
        message = pb.Value()
        spaces.encode(space, value, message)
        decoded = spaces.decode(space, wire(message))
        assert same(decoded, value), (value, decoded)
        assert space.contains(decoded)


def test_dict_values_keep_the_space_key_order() -> None:
    space = SPACES["dict"]
    message = pb.Value()
    spaces.encode(space, {"a": np.zeros(2, np.float32), "z": 1}, message)
    assert [item.key for item in message.dict.items] == list(space.spaces)
    assert list(spaces.decode(space, message)) == list(space.spaces)


@pytest.mark.parametrize(
    "space, name",
    [
        (gs.Text(5), "Text"),
        (gs.Graph(gs.Box(0, 1, (2,)), gs.Discrete(2)), "Graph"),
        (gs.Sequence(gs.Discrete(2)), "Sequence"),
        (gs.Dict({"ok": gs.Discrete(2), "bad": gs.Text(3)}), "Text"),
    ],
)
def test_unsupported_spaces_are_named(space: Any, name: str) -> None:
    with pytest.raises(spaces.UnsupportedSpaceError, match=name) as caught:
        spaces.space_to_proto(space, pb.Space(), "observation_space")
    assert isinstance(caught.value, ConfigurationError)
    assert "observation_space" in str(caught.value)
    assert "supported: Discrete, Box" in str(caught.value)


def test_values_that_do_not_fit_are_refused_with_where() -> None:
    box = SPACES["box_float32"]
    with pytest.raises(ValueError, match=r"action: expected an array of shape \(3, 2\)"):
        spaces.encode(box, np.zeros(3), pb.Value(), "action")
    with pytest.raises(ValueError, match="expected float32 values, got complex128"):
        spaces.encode(box, np.zeros((3, 2), complex), pb.Value())
    with pytest.raises(ValueError, match="is not in Discrete"):
        spaces.encode(SPACES["discrete_start"], 2, pb.Value())
    with pytest.raises(ValueError, match="expected an integer"):
        spaces.encode(SPACES["discrete"], 1.5, pb.Value())
    with pytest.raises(ValueError, match=r"expected the keys \['a', 'z'\]"):
        spaces.encode(SPACES["dict"], {"z": 1}, pb.Value())
    with pytest.raises(ValueError, match=r"value\[1\]: expected an array"):
        spaces.encode(SPACES["tuple"], (1, "x"), pb.Value())


def test_lenient_inputs_are_cast_within_their_kind() -> None:
    message = pb.Value()
    spaces.encode(SPACES["box_float32"], [[0.5, 0], [1, 1], [0, 0]], message)
    decoded = spaces.decode(SPACES["box_float32"], message)
    assert decoded.dtype == np.float32 and decoded[0, 0] == 0.5
    # an integer array of one element is a Discrete value; a list is a Box value
    as_array = pb.Value()
    spaces.array_to_proto(np.int32(3), as_array.array, scalar=True)
    assert same(spaces.decode(SPACES["discrete"], as_array), np.int64(3))


def test_malformed_arrays_from_the_network_are_refused() -> None:
    bad = pb.Array(dtype="float32", shape=[3], data=b"\x00" * 8)
    with pytest.raises(ValueError, match="8 bytes for an array of float32 of shape"):
        spaces.array_from_proto(bad)
    with pytest.raises(ValueError, match="unknown array dtype 'object'"):
        spaces.array_from_proto(pb.Array(dtype="object", data=b""))
    with pytest.raises(ValueError, match="invalid array shape"):
        spaces.array_from_proto(pb.Array(dtype="uint8", shape=[-1], data=b""))
    with pytest.raises(ValueError, match="invalid array shape"):
        spaces.array_from_proto(pb.Array(dtype="uint8", shape=[1] * 40, data=b"\x00"))
    with pytest.raises(ValueError, match="no space described"):
        spaces.space_from_proto(pb.Space())


def test_decoded_arrays_are_writable_copies() -> None:
    message = pb.Value()
    spaces.encode(SPACES["box_uint8_image"], np.ones((6, 5, 3), np.uint8), message)
    decoded = spaces.decode(SPACES["box_uint8_image"], message)
    decoded[0, 0, 0] = 9  # a read-only view of the message bytes would raise


def test_any_values_round_trip_with_their_types() -> None:
    value = {
        "none": None,
        "flag": True,
        "count": -3,
        "ratio": 0.25,
        "name": "cart",
        "blob": b"\x00\x01",
        "array": np.arange(6, dtype=np.int16).reshape(2, 3),
        "zero_d": np.array(2.5),
        "scalar": np.float32(1.5),
        "np_int": np.int64(4),
        "np_bool": np.bool_(True),
        "items": [1, "two", (3.0, None)],
        "nested": {"deep": {"er": [np.uint8(7)]}},
    }
    message = pb.Value()
    spaces.encode_any(value, message)
    assert same(spaces.decode_any(wire(message)), value)
    assert same(spaces.decode(None, wire(message)), value)


@pytest.mark.parametrize("value", [object(), {1: "x"}, 2**70, np.array(["a", "b"])])
def test_any_values_that_cannot_travel_are_refused(value: Any) -> None:
    with pytest.raises(TypeError):
        spaces.encode_any(value, pb.Value(), "info")
