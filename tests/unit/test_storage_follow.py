"""The `job file stream` loop (storage/follow.py) on a scripted store and job: waiting for the file, the
tail read after the job ended, credential renewal, unreachable storage.

The storage calls themselves run against Azurite and the Azure Files double in tests/storage/.
"""

from __future__ import annotations

import pytest

from batchai_operator.api.common import AzureFileShareReference
from batchai_operator.storage.access import Entry, Store
from batchai_operator.storage.errors import CredentialsRefused, StorageFileNotFound, StorageUnreachable
from batchai_operator.storage.follow import Follow
from batchai_operator.storage.locations import StorageLocation

REF = AzureFileShareReference.model_validate(
    {
        "accountName": "acct",
        "azureFileUrl": "https://acct.file.core.windows.net/logs",
        "credentials": {"secretRef": {"name": "s"}},
        "relativeMountPath": "logs",
    }
)
FILE = StorageLocation("file", "acct", "logs", "seg/stdouterr/stdout.txt", REF)


class World:
    """A job and the file it writes, advanced one step per `sleep`: steps[i] = (job state, file content
    or None while the file does not exist)."""

    def __init__(self, steps: list[tuple[str, bytes | None]]) -> None:
        self.steps = steps
        self.i = 0
        self.reads: list[tuple[int, int]] = []
        self.refuse_key: set[int] = set()  # store generations whose credentials are refused
        self.unreachable_steps: set[int] = set()
        self.generation = 0
        self.slept = 0.0

    @property
    def now(self) -> tuple[str, bytes | None]:
        return self.steps[min(self.i, len(self.steps) - 1)]

    def sleep(self, seconds: float) -> None:
        self.slept += seconds
        self.i += 1

    def store(self, renew: bool) -> Store:
        if renew:
            self.generation += 1
        return _Store(self, self.generation)


class _Store:
    def __init__(self, world: World, generation: int) -> None:
        self.world, self.generation = world, generation

    def _check(self) -> bytes:
        if self.generation in self.world.refuse_key:
            raise CredentialsRefused(
                f"{FILE}: the storage account refused the credentials (AuthenticationFailed)"
            )
        if self.world.i in self.world.unreachable_steps:
            raise StorageUnreachable(f"{FILE}: storage unreachable (connection refused)")
        data = self.world.now[1]
        if data is None:
            raise StorageFileNotFound(f"{FILE}: not found")
        return data

    def list(self, location: StorageLocation, expiry_minutes: int | None) -> list[Entry]:
        raise AssertionError("stream does not list")

    def size(self, location: StorageLocation) -> int:
        return len(self._check())

    def read(self, location: StorageLocation, offset: int, length: int) -> bytes:
        data = self._check()
        self.world.reads.append((offset, length))
        return data[offset : offset + length]


def run(world: World, **kw: float) -> tuple[bytes, list[str], int]:
    out = bytearray()
    logs: list[str] = []
    n = Follow(
        FILE,
        open_store=world.store,
        job_state=lambda: world.now[0],
        write=out.extend,
        log=logs.append,
        sleep=world.sleep,
        clock=lambda: world.slept,
        **kw,
    ).run()
    return bytes(out), logs, n


def test_waits_for_the_file_then_follows_it_with_ranged_reads() -> None:
    world = World(
        [
            ("queued", None),
            ("running", None),
            ("running", b"epoch 1\n"),
            ("running", b"epoch 1\n"),
            ("running", b"epoch 1\nepoch 2\n"),
            ("succeeded", b"epoch 1\nepoch 2\nfinal results\n"),
        ]
    )
    out, logs, n = run(world)
    assert out == b"epoch 1\nepoch 2\nfinal results\n"
    assert n == len(out)
    assert logs[0] == 'The file "stdout.txt" was not found. Waiting for the job to write it.'
    assert logs[1].startswith('File "stdout.txt" found in share logs of storage account acct')
    assert len(logs) == 2, "the waiting line is printed once"
    # Only new bytes are read, each from where the last read stopped.
    assert world.reads == [(0, 8), (8, 8), (16, 14)]


def test_the_tail_written_as_the_job_ends_is_read_after_it_ended() -> None:
    # The job's last line lands between a round's read and the job's end: az lost it.
    world = World([("running", b"a\n"), ("succeeded", b"a\nlast line\n"), ("succeeded", b"a\nlast line\n")])
    out, _, _ = run(world)
    assert out == b"a\nlast line\n"


def test_keeps_reading_after_the_end_while_the_file_still_grows() -> None:
    # Blobfuse uploads on close, which may land after the job's state changed.
    world = World([("failed", b"x"), ("failed", b"xy"), ("failed", b"xyz"), ("failed", b"xyz")])
    out, _, _ = run(world)
    assert out == b"xyz"


def test_a_completed_job_without_the_file_is_an_error() -> None:
    world = World([("running", None), ("failed", None)])
    with pytest.raises(StorageFileNotFound, match=r'the job failed without writing "stdout\.txt"'):
        run(world)


def test_refused_credentials_are_renewed_once_then_streaming_goes_on() -> None:
    world = World([("running", b"one\n"), ("running", b"one\ntwo\n"), ("succeeded", b"one\ntwo\n")])
    original_sleep = world.sleep

    def rotate_after_first_round(seconds: float) -> None:
        original_sleep(seconds)
        world.refuse_key.add(0)  # the key the stream started with was rotated

    world.sleep = rotate_after_first_round  # type: ignore[method-assign]
    out, logs, _ = run(world)
    assert out == b"one\ntwo\n"
    assert world.generation == 1
    assert any("renewing the credentials" in line for line in logs)


def test_credentials_refused_after_renewal_stop_the_stream() -> None:
    world = World([("running", b"one\n")])
    world.refuse_key = {0, 1}
    with pytest.raises(CredentialsRefused, match="refused the credentials"):
        run(world)
    assert world.generation == 1


def test_unreachable_storage_is_retried_then_reported() -> None:
    world = World([("running", b"a"), ("running", b"ab"), ("succeeded", b"abc"), ("succeeded", b"abc")])
    world.unreachable_steps = {1}
    out, _, _ = run(world)
    assert out == b"abc"

    down = World([("running", b"a")] * 100)
    down.unreachable_steps = set(range(1, 100))
    with pytest.raises(StorageUnreachable):
        run(down, unreachable_timeout=5)
    assert down.slept == pytest.approx(6.0)


def test_a_file_that_shrinks_is_streamed_again_from_the_start() -> None:
    world = World([("running", b"long line\n"), ("running", b"new\n"), ("succeeded", b"new\n")])
    out, logs, _ = run(world)
    assert out == b"long line\nnew\n"
    assert any("became shorter" in line for line in logs)
