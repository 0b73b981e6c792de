"""An index the operator fills from a watch of its own (reconcile/own_watches.py), read as kopf's indexes
are: key -> the values of every object indexed under that key (observe/indexes.py, `Indexes`).

Written and read in the event loop only; the watch's thread builds the entries (observe/indexes.py's
functions) and hands them over.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

ObjectId = tuple[str, str]  # (namespace, uid) of a watched object


class ObjectIndex(Mapping[Any, tuple[Any, ...]]):
    """Each object's entries ({key: value}, as an indexer returns them), by key; an object's new entries
    replace its old ones."""

    def __init__(self) -> None:
        self._by_key: dict[Any, dict[ObjectId, Any]] = {}
        self._keys_of: dict[ObjectId, tuple[Any, ...]] = {}

    def put(self, obj: ObjectId, entries: Mapping[Any, Any]) -> None:
        self.remove(obj)
        for key, value in entries.items():
            self._by_key.setdefault(key, {})[obj] = value
        if entries:
            self._keys_of[obj] = tuple(entries)

    def remove(self, obj: ObjectId) -> None:
        for key in self._keys_of.pop(obj, ()):
            values = self._by_key[key]
            del values[obj]
            if not values:
                del self._by_key[key]

    def objects(self, namespace: str | None) -> list[ObjectId]:
        """The objects indexed, in one namespace or in all."""
        return [obj for obj in self._keys_of if namespace is None or obj[0] == namespace]

    def __getitem__(self, key: Any) -> tuple[Any, ...]:
        return tuple(self._by_key[key].values())

    def __iter__(self) -> Iterator[Any]:
        return iter(list(self._by_key))

    def __len__(self) -> int:
        return len(self._by_key)

    def __contains__(self, key: object) -> bool:
        return key in self._by_key


def replace_all(
    index: ObjectIndex, namespace: str | None, listed: Iterable[tuple[ObjectId, Mapping[Any, Any]]]
) -> set[ObjectId]:
    """A fresh list of one namespace (or all) replaces what the index held there; the objects that were
    indexed and are no longer listed (deleted while the watch was down), now dropped."""
    before = set(index.objects(namespace))
    for obj, entries in listed:
        index.put(obj, entries)
        before.discard(obj)
    for obj in before:
        index.remove(obj)
    return before
