"""`job file stream`: follow a file the job writes, as `az batchai job file stream` did, without its two
bugs (docs/cli.md): the tail written between the last read and the job's end is read after
the job ended, and refused credentials are renewed (az's SAS URL died after 60 minutes).

Each round: look at the job's state, then read what the file gained since the last round (ranged
reads). A round that starts after the job ended reads the tail; streaming stops at the first such
round that finds nothing new.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from .access import Store, read_all
from .errors import CredentialsRefused, StorageFileNotFound, StorageUnreachable
from .locations import StorageLocation

TERMINAL = ("succeeded", "failed")


@dataclass
class Follow:
    """One `job file stream`: the file's location and how to reach storage and the job."""

    location: StorageLocation  # the file
    open_store: Callable[[bool], Store]  # renew=True re-resolves the credentials (Secret re-read, new token)
    job_state: Callable[[], str | None]  # the job's executionState now
    write: Callable[[bytes], None]
    log: Callable[[str], None]
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    interval: float = 1.0
    unreachable_timeout: float = 60.0  # give up when storage does not answer for this long

    def run(self) -> int:
        """Stream the file to `write` until the job is done; the number of bytes streamed."""
        name = self.location.path.rsplit("/", 1)[-1]
        store = self.open_store(False)
        offset = 0
        found = waiting_logged = renewed = False
        unreachable_since: float | None = None
        while True:
            state = self.job_state()
            ended = state in TERMINAL
            try:
                size = store.size(self.location)
                if not found:
                    self.log(f'File "{name}" found in {self.location}. Start streaming')
                    found = True
                if size < offset:
                    self.log(f'"{name}" became shorter; streaming it again from the start')
                    offset = 0
                gained = 0
                for chunk in read_all(store, self.location, offset, size):
                    self.write(chunk)
                    offset += len(chunk)
                    gained += len(chunk)
                renewed = False
                unreachable_since = None
            except StorageFileNotFound:
                if ended:
                    raise StorageFileNotFound(
                        f'the job {state} without writing "{name}" ({self.location})'
                    ) from None
                if not waiting_logged:
                    self.log(f'The file "{name}" was not found. Waiting for the job to write it.')
                    waiting_logged = True
                self.sleep(self.interval)
                continue
            except CredentialsRefused as exc:
                if renewed:
                    raise
                self.log(f"{exc}; renewing the credentials")
                store = self.open_store(True)
                renewed = True
                continue
            except StorageUnreachable:
                now = self.clock()
                unreachable_since = now if unreachable_since is None else unreachable_since
                if now - unreachable_since >= self.unreachable_timeout:
                    raise
                self.sleep(self.interval)
                continue
            if ended and gained == 0:
                return offset
            self.sleep(self.interval)
