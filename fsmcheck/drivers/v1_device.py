"""The reference VFIO v1 migration-region driver.

The region (SPEC section 1, seeds 000 and 001): a packed 32-byte header --
``device_state`` u32 at 0 (read/write), ``reserved`` u32 at 4 (reads 0,
writes ignored), ``pending_bytes`` u64 at 8, ``data_offset`` u64 at 16 (both
read-only), ``data_size`` u64 at 24 (read/write) -- followed by a data
section at :data:`DATA_OFFSET`. Fields are accessed only at their native width
and alignment (anything else fails with ``EINVAL``).

``device_state`` transitions follow the model's ``lenient`` profile (any
valid value from any valid state), with the validity predicate of
``models/vfio_v1.toml``; a write asking to enter or leave the error state
(110b) fails; reset gives 001b from every state. Bits 3-31 are stored as
written, so a user's read-modify-write preserves them. Saving (010b, 011b)
and resuming (100b) follow the sequences of seed 001, with the stream format
of :mod:`.stream`.

While the device runs (bit 0 set), its internal state changes on every
access to the data section (the device works while the user migrates it);
register accesses alone do not change it, so an idle device keeps its state
between two of them.
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass
from types import MappingProxyType
from typing import Mapping

import networkx as nx

from ..adapters.contract import DriverError
from ..semantics.graphs import arc_graph
from ..model import load_model
from ..model.schema import Config
from ..model.shipped import shipped_model_path
from .stream import StreamError, end_record, parse_stream, record

__all__ = ["ReferenceV1Device", "ReferenceV1Adapter", "DATA_OFFSET", "DATA_SIZE", "FIELDS", "DerivedV1",
           "derive_v1"]

#: Header fields: name -> (offset, width in bytes, writable).
FIELDS = {
    "device_state": (0, 4, True),
    "reserved": (4, 4, True),
    "pending_bytes": (8, 8, False),
    "data_offset": (16, 8, False),
    "data_size": (24, 8, True),
}
DATA_OFFSET = 0x1000
DATA_SIZE = 0x100
STATE_SIZE = 64
RUNNING, SAVING, RESUMING = 1, 2, 4


@dataclass(frozen=True, eq=False)
class DerivedV1:
    """What a v1 device derives from its model; read-only, shared by every
    device of one (class, model).

    Attributes:
        model: the model it was derived from.
        graph: the arc graph of the ``lenient`` profile (frozen: it refuses changes).
        value_of, name_of: state name -> value and value -> name.
    """

    model: object
    graph: nx.DiGraph
    value_of: Mapping[str, int]
    name_of: Mapping[int, str]


class ReferenceV1Device:
    """A reference v1 device (see the module docstring).

    Class attributes a variant may change: ``state_size`` (bytes of internal
    state) and ``data_area`` (bytes of the data section; a chunk saved or
    resumed is at most this long).
    """

    state_size = STATE_SIZE
    data_area = DATA_SIZE
    #: The contract's declaration: register accesses alone do not change the
    #: state of a running device (only data-section accesses do), so the
    #: pack may compare the re-saved streams of resumed devices.
    still_when_idle = True

    def __init__(self, model, seed: int = 0):
        self.model = model
        derived = self.derived(model)
        self.graph, self.value_of, self.name_of = derived.graph, derived.value_of, derived.name_of
        self.error_value = self.value_of[model.error]
        self.device_state = self.value_of[model.initial]
        self.memory = bytearray(random.Random(seed).randbytes(self.state_size))
        self.tick = 0
        self.save_buffer = b""
        self.save_pos = 0
        self.chunk = b""
        self.resume_buffer = bytearray()
        self.data_size = 0
        self.data = bytearray(self.data_area)
        self.injected: dict[tuple[str, str], tuple[str, bool]] = {}
        self.closed = False

    # -- what the device derives from its model -------------------------------
    @classmethod
    def derive_graph(cls, model, config: Config) -> nx.DiGraph:
        """The arc graph writes are checked against (the hook a variant that
        changes the transitions overrides; it may depend only on its arguments).

        Returns: :func:`~fsmcheck.semantics.graphs.arc_graph` of ``config``.
        """
        return arc_graph(model, config)

    @classmethod
    def derived(cls, model) -> DerivedV1:
        """What a device derives from ``model`` (its ``lenient`` profile),
        through :func:`derive_v1`.

        Returns: a read-only :class:`DerivedV1`.
        """
        return derive_v1(cls, model)

    # -- the device runs ---------------------------------------------------
    def _advance(self, works: bool = False) -> None:
        """Every operation; ``works`` (a data-section access) changes the
        internal state while the device runs."""
        if self.closed:
            raise DriverError("EBADF", "device closed")
        if works and self.device_state & RUNNING:
            self.tick += 1
            self.memory[self.tick % self.state_size] ^= (self.tick * 53 + 7) & 0xFF

    def _field(self, offset: int, width: int) -> str:
        for name, (off, size, _) in FIELDS.items():
            if off == offset and size == width:
                return name
        raise DriverError("EINVAL", f"no field at offset {offset} with width {width}")

    # -- contract ------------------------------------------------------------
    def read_header(self, offset: int, width: int) -> int:
        self._advance()
        name = self._check_access(offset, width)
        if name == "device_state":
            return self._reported_state()
        if name == "reserved":
            return 0
        if name == "pending_bytes":
            return self._pending()
        if name == "data_offset":
            self._prepare_chunk()
            return DATA_OFFSET
        return self.data_size

    def write_header(self, offset: int, width: int, value: int) -> None:
        self._advance()
        name = self._check_access(offset, width)
        if not FIELDS[name][2]:
            raise DriverError("EINVAL", f"{name} is read-only")
        if name == "device_state":
            self._write_state(value & 0xFFFFFFFF)
        elif name == "data_size":
            self._write_data_size(value)

    def read_data(self, offset: int, size: int) -> bytes:
        self._advance(works=True)
        start = offset - DATA_OFFSET
        if start < 0 or size < 0 or start + size > self.data_area:
            raise DriverError("EINVAL", f"data access {offset:#x}+{size} outside the data section")
        return bytes(self.data[start:start + size])

    def write_data(self, offset: int, data: bytes) -> None:
        self._advance(works=True)
        start = offset - DATA_OFFSET
        if start < 0 or start + len(data) > self.data_area:
            raise DriverError("EINVAL", f"data access {offset:#x}+{len(data)} outside the data section")
        self.data[start:start + len(data)] = data

    def reset(self) -> None:
        if self.closed:
            raise DriverError("EBADF", "device closed")
        self.device_state = self._reset_value()
        self.save_buffer, self.save_pos, self.chunk = b"", 0, b""
        self.resume_buffer = bytearray()

    def close(self) -> None:
        self.closed = True

    def inject_failure(self, src: str, dst: str, errno: str = "EIO", to_error: bool = False) -> None:
        """Make the next write ``src -> dst`` fail (into 110b when ``to_error``)."""
        self.injected[(src, dst)] = (errno, to_error)

    # -- hooks (mutants override these) ------------------------------------
    def _check_access(self, offset: int, width: int) -> str:
        return self._field(offset, width)

    def _valid(self, value: int) -> bool:
        return self.model.valid(value)

    def _reset_value(self) -> int:
        return self.value_of[self.model.reset]

    def _reported_state(self) -> int:
        return self.device_state

    def _store_state(self, value: int) -> None:
        self.device_state = value

    def _validate(self, data: bytes) -> bytes:
        return parse_stream(data, self.state_size)

    def _pending(self) -> int:
        return len(self.save_buffer) - self.save_pos

    # -- internals -----------------------------------------------------------
    def _write_state(self, value: int) -> None:
        current = self.device_state & self.model.mask
        target = value & self.model.mask
        src, dst = self.name_of[current], self.name_of[target]
        if current == self.error_value:
            raise DriverError("EINVAL", "the error state is left only by reset")
        if not self._valid(value):
            raise DriverError("EINVAL", f"{value:#x} is not a valid device_state")
        if target != current and not self.graph.has_edge(src, dst):
            raise DriverError("EINVAL", f"{src} -> {dst} is not supported")
        if (src, dst) in self.injected:
            errno, to_error = self.injected.pop((src, dst))
            if to_error:
                self.device_state = self.error_value
            raise DriverError(errno, f"injected failure at {src} -> {dst}")
        if current & RESUMING and not target & RESUMING:
            try:
                self.memory[:] = self._validate(bytes(self.resume_buffer))
            except StreamError as exc:
                raise DriverError("EINVAL", f"resume data rejected: {exc}") from None
            self.resume_buffer = bytearray()
        if target & SAVING and not current & SAVING:
            self.save_pos = 0
            self.save_buffer = record(b"P", bytes(self.memory)) if target & RUNNING else b""
        if target & RESUMING and not current & RESUMING:
            self.resume_buffer = bytearray()
        if target & SAVING and not target & RUNNING and not self._finalized():
            # stop-and-copy: append the rest of the state and the end record
            self.save_buffer += record(b"F", bytes(self.memory))
            self.save_buffer += end_record(self.save_buffer)
        if not target & SAVING:
            self.save_buffer, self.save_pos, self.chunk = b"", 0, b""
        self._store_state(value)

    def _finalized(self) -> bool:
        """True once the save buffer ends with its end record (9 bytes)."""
        return len(self.save_buffer) >= 9 and self.save_buffer[-9:-8] == b"E"

    def _prepare_chunk(self) -> None:
        if self.device_state & SAVING:
            self.chunk = self.save_buffer[self.save_pos:self.save_pos + self.data_area]
            self.data[:len(self.chunk)] = self.chunk
            self.data_size = len(self.chunk)
            self.save_pos += len(self.chunk)

    def _write_data_size(self, size: int) -> None:
        if not self.device_state & RESUMING:
            raise DriverError("EINVAL", "data_size is written only while resuming")
        if size > self.data_area:
            raise DriverError("EINVAL", f"data_size {size} exceeds the data section")
        self.resume_buffer += self.data[:size]
        self.data_size = size


class ReferenceV1Adapter:
    """Opens :class:`ReferenceV1Device` instances (``device_class`` for mutants)."""

    def __init__(self, device_class=ReferenceV1Device):
        self.device_class = device_class
        self.model = load_model(shipped_model_path("vfio_v1"))
        self._opened = 0

    @property
    def pure_python(self) -> bool:
        """True when the device class is fsmcheck's own
        (:func:`~fsmcheck.drivers.reference.pure_python_class`): the harness
        may call it on the test's thread."""
        from .reference import pure_python_class

        return pure_python_class(self.device_class)

    def open(self):
        self._opened += 1
        return self.device_class(self.model, seed=self._opened)


@functools.lru_cache(maxsize=8)
def derive_v1(cls: type[ReferenceV1Device], model) -> DerivedV1:
    """The cache every :class:`ReferenceV1Device` derives through: the
    :class:`DerivedV1` of (device class, model), derived on the first open of
    each."""
    config = next(c for c in model.configs() if c.profile == "lenient")
    return DerivedV1(model=model, graph=nx.freeze(cls.derive_graph(model, config)),
                     value_of=MappingProxyType({s.name: s.value for s in model.states}),
                     name_of=MappingProxyType({s.value: s.name for s in model.states}))
