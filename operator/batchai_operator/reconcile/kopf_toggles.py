"""kopf's index readiness, linear in the number of objects (kopf 1.45).

Until every watched resource's first list is indexed, kopf holds every handler: each object of those
lists gets a toggle in one ToggleSet, and each object's worker waits for the whole set to be on. kopf's
ToggleSet answers `is_on` by asking every toggle, and wakes every waiter on every change: with N objects
present at the start, N changes wake N waiters that each look at N toggles. 2,000 finished TrainingJobs
kept an operator's event loop busy for most of a minute after its start (py-spy in make bench, scenario
restart); 10,000 would take hours.

CountingToggleSet keeps the same semantics, counts its toggles that are on, and wakes its waiters only
when the set's own state changes. kopf has no setting for this, and no public way to replace the class:
`install` swaps the class kopf's orchestration makes the set from (tests/unit/test_kopf_toggles.py fails
if a kopf upgrade stops making it there, and holds the semantics to kopf's own).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable

from kopf._cogs.aiokits import aiotoggles

KOPFS = aiotoggles.ToggleSet  # kopf's own (the tests compare with it)


class CountingToggleSet(aiotoggles.ToggleSet):
    """aiotoggles.ToggleSet with an O(1) state for `all` and `any`."""

    def __init__(self, fn: Callable[[Iterable[bool]], bool]) -> None:
        super().__init__(fn)
        self._on = 0  # how many of its toggles are on

    def is_on(self) -> bool:
        if self._fn is all:
            return self._on == len(self._toggles)
        if self._fn is any:
            return self._on > 0
        return super().is_on()

    async def make_toggle(self, __val: bool = False, *, name: str | None = None) -> aiotoggles.Toggle:
        toggle = _CountedToggle(self, __val, name=name, condition=self._condition)
        async with self._condition:
            before = self.is_on()
            self._toggles.add(toggle)
            self._on += toggle.is_on()
            self._notify_if_changed(before)
        return toggle

    async def drop_toggle(self, toggle: aiotoggles.Toggle) -> None:
        await self.drop_toggles([toggle])

    async def drop_toggles(self, toggles: Iterable[aiotoggles.Toggle]) -> None:
        async with self._condition:
            before = self.is_on()
            for toggle in toggles:
                if toggle in self._toggles:
                    self._toggles.discard(toggle)
                    self._on -= toggle.is_on()
            self._notify_if_changed(before)

    def _count(self, toggle: aiotoggles.Toggle, state: bool) -> None:
        """A toggle of the set is turned to `state` (under the condition's lock)."""
        if toggle in self._toggles and toggle.is_on() != state:
            self._on += 1 if state else -1

    def _notify_if_changed(self, before: bool) -> None:
        if self.is_on() != before:
            self._condition.notify_all()


class _CountedToggle(aiotoggles.Toggle):
    """A toggle that keeps its set's count. Its own waiters share the set's condition: every turn wakes
    them, as kopf's do (turns are rare: peering, not the per-object readiness, which only drops)."""

    def __init__(
        self, owner: CountingToggleSet, state: bool, *, name: str | None, condition: asyncio.Condition
    ) -> None:
        super().__init__(state, name=name, condition=condition)
        self._owner = owner

    async def turn_to(self, __state: bool) -> None:
        async with self._condition:
            self._owner._count(self, bool(__state))
            self._state = bool(__state)
            self._condition.notify_all()


def install() -> None:
    """Make kopf build its toggle sets as CountingToggleSets (before `kopf run` starts the operator)."""
    aiotoggles.ToggleSet = CountingToggleSet  # type: ignore[misc]
