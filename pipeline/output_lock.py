"""One run at a time per --output: a lock file the launcher holds while its run writes.

A second run on the same output (a nightly job that overran into the next night's) would remove the first run's
temporary files and uncommitted error files in its start-up clean-up, and both would redo the same films. The
launcher writes `<output>/_run.lock.json` (host, pid, start, and a heartbeat it renews every HEARTBEAT_S while the
run goes on) and removes it when the run ends or fails (a killed launcher leaves it). A run that finds a live lock
stops with a message naming its holder. A lock is stale, and taken over with a warning, when its process is gone on
this host or its heartbeat is older than STALE_S (a launcher killed on another machine); a lock file that cannot be
read (caught mid-write) is held until the file itself is older than STALE_S. Every write is whole (a name beside it,
then a rename), a new local lock is created exclusively, and a heartbeat first checks the lock is still this run's:
a run whose lock another took over stops. On a local or mounted disk the launcher also holds an flock(2) on
`<output>/_run.lock` for the whole run, taken before the lock file is read: the kernel lets one process have it and
frees it when that process dies, so of two launchers finding a gone run's lock at once only one can take it over
(reading, judging and rewriting the lock file is not one step: before 2026-12-07 both could).
"""
from __future__ import annotations

import fcntl
import json
import logging
import math
import os
import socket
import time
from typing import Optional

from apache_beam.io.filesystems import FileSystems

from transforms.discover import local_path
from transforms.write import delete_files, join_path, publish, read_json, temp_path, write_json

log = logging.getLogger("pipeline.run")
LOCK_NAME = "_run.lock.json"  # '_': table readers skip it
GUARD_NAME = "_run.lock"  # flock(2)ed while a run on a local disk goes on; removed as it ends (a killed run leaves it)
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
        self.guard = local_path(join_path(output, GUARD_NAME))
        self.me = {"host": socket.gethostname(), "pid": os.getpid(), "started": time.time()}
        self._renewed = 0.0
        self._guard_fd: Optional[int] = None

    def holder(self) -> Optional[dict]:
        """The lock's content, or None when there is no lock ({} when it cannot be read: is_stale goes by its age)."""
        try:
            held = read_json(self.path)
        except Exception:  # noqa: BLE001 - absent, or half-written by a killed or older launcher
            return {} if FileSystems.exists(self.path) else None
        return held if isinstance(held, dict) else {}

    def mine(self, held: Optional[dict]) -> bool:
        return bool(held) and (held.get("host"), held.get("pid")) == (self.me["host"], self.me["pid"])

    def is_stale(self, held: dict) -> bool:
        """Whether the run that holds `held` is gone (its lock may be taken over)."""
        beat, pid = _number(held.get("heartbeat")), _process_id(held.get("pid"))
        # A pid or heartbeat no launcher writes (a hand-edited lock: before 2026-12-06 a traceback) reads as an
        # unreadable lock, which may be a live run's caught mid-write: only the file's own age can call it gone.
        malformed = ("heartbeat" in held and beat is None) or ("pid" in held and pid is None)
        if not held or malformed:
            return time.time() - self._updated() > STALE_S
        if time.time() - (beat if beat is not None else self._updated()) > STALE_S:
            return True
        return held.get("host") == self.me["host"] and pid is not None and not _pid_alive(pid)

    def acquire(self) -> None:
        self._hold_guard()
        try:
            self._acquire()
        except BaseException:
            self._drop_guard()
            raise

    def _acquire(self) -> None:
        held = self._claim_absent()
        if held is None:
            return
        if not self.mine(held):
            if not self.is_stale(held):
                raise SystemExit(f"pipeline.run: another run is writing to this --output ({self._who(held)}); one run "
                                 f"at a time per output. If that run is gone, delete {self.path}")
            log.warning("taking over the lock of a run that is gone: %s", held or "unreadable lock file")
        self._write()

    def __enter__(self) -> "OutputLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def renew(self) -> None:
        """The heartbeat, every HEARTBEAT_S, while the lock is still this run's. A run whose lock another took over
        (this one looked gone: paused past STALE_S) stops rather than both writing one output."""
        if time.time() - self._renewed < HEARTBEAT_S:
            return
        held = self._claim_absent()
        if not held:  # None: created again (deleted by hand); {}: caught mid-write (not ours), look at the next poll
            return
        if not self.mine(held):
            raise SystemExit(f"pipeline.run: another run took over the lock on this --output ({self._who(held)}); "
                             f"this run stops so that two runs do not write one output ({self.path})")
        self._write()

    def release(self) -> None:
        try:
            if self.mine(self.holder()):
                delete_files([self.path])
        finally:
            self._drop_guard()

    def _hold_guard(self) -> None:
        """The flock on GUARD_NAME, or a stop naming the run that has it. Nothing where the output is not on a local
        or mounted disk (a bucket), or its filesystem has no flock: the lock file alone decides there."""
        if self.guard is None or self._guard_fd is not None:
            return
        os.makedirs(os.path.dirname(self.guard), exist_ok=True)
        while True:
            fd = os.open(self.guard, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise SystemExit(f"pipeline.run: another run is writing to this --output or starting on it "
                                 f"({self._who(self.holder() or {})}; a live process holds {self.guard}); one run "
                                 "at a time per output") from None
            except OSError:  # (ENOLCK, EOPNOTSUPP: a filesystem without locks)
                os.close(fd)
                return
            try:
                if os.stat(self.guard).st_ino == os.fstat(fd).st_ino:
                    self._guard_fd = fd
                    return
            except FileNotFoundError:
                pass
            os.close(fd)  # the run that held it removed it after we opened it: the file there now is the lock

    def _drop_guard(self) -> None:
        """Removed while still held (a launcher that opened it then finds another file there, _hold_guard), then
        freed: a finished or dry run leaves nothing; a killed one leaves the empty file, which the next one takes."""
        if self._guard_fd is not None:
            try:
                os.unlink(self.guard)
            except OSError:
                pass
            os.close(self._guard_fd)
            self._guard_fd = None

    def _claim_absent(self) -> Optional[dict]:
        """None once this run has created the lock where there was none; else the lock there ({} while unreadable)."""
        held = self.holder()
        if held is not None:
            return held
        try:
            self._create()
        except FileExistsError:  # another launcher created it since we looked
            return self.holder() or {}
        return None

    def _create(self) -> None:
        local = local_path(self.path)
        if local is None:  # Beam FileSystems have no create-if-absent: an object store's lock is written whole
            return self._write()
        os.makedirs(os.path.dirname(local), exist_ok=True)  # as FileSystems.create does
        # O_EXCL: of two launchers starting at once, one creates it. A reader between open and write sees it empty,
        # which counts as held (a fresh file).
        with os.fdopen(os.open(local, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644), "wb") as f:
            f.write(json.dumps(self._beat()).encode("utf-8"))

    def _write(self) -> None:
        """Written beside and renamed into place: a reader sees the old lock or the new one, never a part."""
        tmp = temp_path(self.path)
        try:
            write_json(tmp, self._beat())
            publish(tmp, self.path)
        except BaseException:
            if FileSystems.exists(tmp):
                delete_files([tmp])
            raise

    def _beat(self) -> dict:
        self._renewed = time.time()
        return {**self.me, "heartbeat": self._renewed}

    def _updated(self) -> float:
        """When the lock file was last written: 0 when it is gone; now when its filesystem cannot tell (held)."""
        try:
            return FileSystems.last_updated(self.path)
        except Exception:  # noqa: BLE001 - gone since it was read, or a filesystem without modification times
            return time.time() if FileSystems.exists(self.path) else 0.0

    def _who(self, held: dict) -> str:
        if not held:
            return f"its lock file is being written or unreadable, last updated {_when(self._updated())}"
        started = _number(held.get("started"))
        return f"host {held.get('host')}, pid {held.get('pid')}, started {_when(started) if started else 'unknown'}"


def _when(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


def _number(value) -> Optional[float]:
    """A lock field as a finite number (a number or its text), else None."""
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _process_id(value) -> Optional[int]:
    """A lock's pid as a process id os.kill can look up (a positive whole number of pid_t's size), else None: 0 and
    -1 would ask about a process group or every process."""
    number = _number(value)
    return int(number) if number is not None and number == int(number) and 0 < number < 2 ** 31 else None
