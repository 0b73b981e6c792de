"""reconcile/kopf_toggles.py: kopf's readiness toggle set, counted. The same answers as kopf's own for the
same steps, its waiters woken only when the set's state changes, and kopf still making the set where
install() replaces the class."""

from __future__ import annotations

import asyncio
import inspect

import pytest
from kopf._cogs.aiokits import aiotoggles
from kopf._core.reactor import orchestration, running

from batchai_operator.reconcile.kopf_toggles import KOPFS, CountingToggleSet


@pytest.mark.parametrize("fn", [all, any])
async def test_the_same_state_as_kopfs_own_set_at_every_step(fn: object) -> None:
    assert KOPFS is not CountingToggleSet
    sets = [CountingToggleSet(fn), KOPFS(fn)]  # type: ignore[arg-type]
    toggles: list[list[aiotoggles.Toggle]] = [[], []]
    for i, s in enumerate(sets):
        toggles[i].append(await s.make_toggle(name="a"))
        toggles[i].append(await s.make_toggle(True, name="b"))
    states = [[s.is_on() for s in sets]]
    for step in range(4):
        for i, s in enumerate(sets):
            if step == 0:
                await toggles[i][0].turn_to(True)
            elif step == 1:
                await toggles[i][1].turn_to(False)
            elif step == 2:
                await s.drop_toggle(toggles[i][1])
            else:
                await s.drop_toggles(toggles[i])
        states.append([s.is_on() for s in sets])
    assert all(a == b for a, b in states), states
    assert states[-1] == [fn([]), fn([])]  # type: ignore[operator]


async def test_waiters_wake_once_when_the_last_toggle_is_dropped() -> None:
    readiness = CountingToggleSet(all)
    toggles = [await readiness.make_toggle(name=str(i)) for i in range(200)]
    wakeups = 0
    original = readiness._condition.notify_all

    def counting_notify_all() -> None:
        nonlocal wakeups
        wakeups += 1
        original()

    readiness._condition.notify_all = counting_notify_all  # type: ignore[method-assign]
    waiters = [asyncio.create_task(readiness.wait_for(True)) for _ in range(50)]
    await asyncio.sleep(0)
    for t in toggles[:-1]:
        await readiness.drop_toggle(t)
    await asyncio.sleep(0)
    assert not any(w.done() for w in waiters) and wakeups == 0
    await readiness.drop_toggle(toggles[-1])
    await asyncio.wait_for(asyncio.gather(*waiters), 5)
    assert wakeups == 1


def test_kopf_still_makes_its_sets_from_the_class_install_replaces() -> None:
    """A kopf upgrade that builds its readiness set elsewhere fails here, not silently at scale."""
    assert "aiotoggles.ToggleSet(all)" in inspect.getsource(orchestration)
    assert "aiotoggles.ToggleSet(any)" in inspect.getsource(running)
    import batchai_operator.main  # noqa: F401  (installs)

    assert aiotoggles.ToggleSet is CountingToggleSet
