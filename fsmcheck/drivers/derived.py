"""What a reference driver derives from its model, derived once and shared.

A pack opens thousands of devices; a reference device derives, from its
model, what its flag set allows (the combination table, the arc graph).
That is the same for every device of one (hook, model, flag set, profile),
so it is derived on the first open and kept, read-only, in a bounded cache.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Callable, TypeVar

__all__ = ["DerivedCache", "model_key"]

T = TypeVar("T")


def model_key(model) -> object:
    """The part of a cache key that names ``model``: its digest (the SHA-256 of
    its file), or its identity when it has none (a model built in memory)."""
    return model.digest or ("id", id(model))


class DerivedCache:
    """A bounded, thread-safe least-recently-used cache of derived values
    (each an object with a ``model`` attribute: the model it was derived from).

    Keyed by (derive hook, model digest -- or the model's identity when it has
    no digest --, flag set, profile). A hit is used only when its model is the
    very model asked for or equal to it (a model changed with
    ``dataclasses.replace`` keeps its digest but is derived anew).

    Args:
        size: entries kept (>= 1); the least recently used is dropped first.

    Attributes:
        hits, misses: lookups served from the cache and derivations made.
    """

    def __init__(self, size: int = 32):
        if size < 1:
            raise ValueError(f"cache size {size} < 1")
        self.size = size
        self.hits = self.misses = 0
        self._entries: OrderedDict[tuple, object] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: tuple, model, make: Callable[[], T]) -> T:
        """The entry of ``key`` derived from ``model``, calling ``make()`` to
        derive it when absent (outside the lock: two threads missing at once
        both derive, and the entries are equal).

        Raises:
            whatever ``make`` raises (nothing is cached then).
        """
        with self._lock:
            found = self._entries.get(key)
            if found is not None and (found.model is model or found.model == model):
                self._entries.move_to_end(key)
                self.hits += 1
                return found
        derived = make()
        with self._lock:
            self.misses += 1
            self._entries[key] = derived
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
        return derived

    def clear(self) -> None:
        """Drop every entry and zero the counters."""
        with self._lock:
            self._entries.clear()
            self.hits = self.misses = 0
