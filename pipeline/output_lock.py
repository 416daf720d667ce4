"""One run at a time per --output: a lock file the launcher holds while its run writes.

A second run on the same output (a nightly job that overran into the next night's) would remove the first run's
temporary files and uncommitted error files in its start-up clean-up, and both would redo the same films. The
launcher writes `<output>/_run.lock.json` (host, pid, start, and a heartbeat it renews every HEARTBEAT_S while the
run goes on) and removes it when the run ends or fails (a killed launcher leaves it). A run that finds a live lock
stops with a message naming its holder. A lock is stale, and taken over with a warning, when its process is gone on
this host or its heartbeat is older than STALE_S (a launcher killed on another machine).
"""
from __future__ import annotations

import logging
import os
import socket
import time
from typing import Optional

from apache_beam.io.filesystems import FileSystems

from transforms.write import delete_files, join_path, read_json, write_json

log = logging.getLogger("pipeline.run")
LOCK_NAME = "_run.lock.json"  # '_': table readers skip it
HEARTBEAT_S = 30.0
STALE_S = 300.0


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


class OutputLock:
    def __init__(self, output: str):
        self.path = join_path(output, LOCK_NAME)
        self.me = {"host": socket.gethostname(), "pid": os.getpid(), "started": time.time()}
        self._renewed = 0.0

    def holder(self) -> Optional[dict]:
        """The lock's content, or None when there is no lock (an unreadable one counts as stale)."""
        try:
            return read_json(self.path)
        except Exception:  # noqa: BLE001 - absent, or half-written by a killed launcher
            return {} if FileSystems.exists(self.path) else None

    def mine(self, held: Optional[dict]) -> bool:
        return bool(held) and (held.get("host"), held.get("pid")) == (self.me["host"], self.me["pid"])

    def is_stale(self, held: dict) -> bool:
        if not held or time.time() - float(held.get("heartbeat", 0)) > STALE_S:
            return True
        return held.get("host") == self.me["host"] and not _pid_alive(int(held.get("pid", 0)))

    def acquire(self) -> None:
        held = self.holder()
        if held is not None and not self.mine(held):
            if not self.is_stale(held):
                started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(held.get("started", 0))))
                raise SystemExit(f"pipeline.run: another run is writing to this --output (host {held.get('host')}, "
                                 f"pid {held.get('pid')}, started {started}); one run at a time per output. "
                                 f"If that run is gone, delete {self.path}")
            log.warning("taking over the lock of a run that is gone: %s", held or "unreadable lock file")
        self._write()

    def __enter__(self) -> "OutputLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def renew(self) -> None:
        if time.time() - self._renewed >= HEARTBEAT_S:
            self._write()

    def release(self) -> None:
        if self.mine(self.holder()):
            delete_files([self.path])

    def _write(self) -> None:
        self._renewed = time.time()
        write_json(self.path, {**self.me, "heartbeat": self._renewed})
