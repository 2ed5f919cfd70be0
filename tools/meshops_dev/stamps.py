"""Version stamps: a JSON file per cache key under ``$MESHOPS_CACHE/stamps``, written when the
work keyed by it succeeded (``cached()``)."""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

from . import cache, progress

T = TypeVar("T")


def _stamp_path(key: str) -> Path:
    safe = key.replace("/", "__").replace(":", "_").replace(" ", "_")
    return cache.stamps_dir() / f"{safe}.json"


def is_stamped(key: str) -> bool:
    return _stamp_path(key).is_file()


def read_stamp(key: str) -> dict | None:
    path = _stamp_path(key)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def write_stamp(key: str, **info: object) -> None:
    path = _stamp_path(key)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"key": key, "done": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")}
    data.update(info)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(path)


def clear_stamp(key: str) -> None:
    _stamp_path(key).unlink(missing_ok=True)


def cached(
    key: str,
    producer: Callable[[], T],
    *,
    desc: str | None = None,
    check: Callable[[], bool] | None = None,
) -> T | None:
    """Run ``producer`` unless the stamp ``key`` exists (and ``check()``, if given, is true).

    ``key`` must contain every version the result depends on (for example
    ``"image/kube-apiserver/v1.35.4"``). The work runs inside a progress step named ``desc``
    (default: the key) that records ``cached: true`` when skipped. Returns the producer's result,
    or None when skipped. The stamp is written only when the producer returns without error.
    """
    with progress.step(desc or key) as st:
        if is_stamped(key) and (check is None or check()):
            st.cached = True
            return None
        result = producer()
        write_stamp(key)
        return result


def _lock_path(name: str) -> Path:
    path = cache.cache_dir() / "locks" / f"{name}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _acquire(handle, waiting: str, what: str) -> None:
    """flock ``handle``; while another process holds it, say ``waiting`` once (with what the
    holder wrote into the lock file) and every 30 s for how long."""
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return
    except BlockingIOError:
        pass
    started = time.monotonic()
    holder = Path(handle.name).read_text(encoding="utf-8").strip()
    progress.note(waiting + (f" ({holder})" if holder else ""))
    heartbeat = started + 30
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            time.sleep(2)
            if time.monotonic() >= heartbeat:
                heartbeat += 30
                progress.note(f"... still waiting for {what} ({progress.fmt_duration(time.monotonic() - started)})")
    progress.note(f"{what}: the other process ended after {progress.fmt_duration(time.monotonic() - started)} of waiting")


def holder() -> str:
    """Who this process is, for a lock file or a marker that another process reads."""
    return f"pid {os.getpid()} since {datetime.datetime.now().strftime('%Y-%m-%d %H:%M:%S')}: {' '.join(sys.argv)}"


def _write_holder(handle) -> None:
    handle.seek(0)
    handle.truncate()
    handle.write(holder() + "\n")
    handle.flush()


@contextlib.contextmanager
def exclusive(name: str, what: str) -> Iterator[None]:
    """Hold the cache's lock ``name`` (one process at a time builds ``what``): a second process
    waits, showing for how long, then finds the first one's result in the cache."""
    with _lock_path(name).open("a+", encoding="utf-8") as handle:
        _acquire(handle, f"waiting for another process that builds {what} (tools/dev build later, in the background?)", what)
        _write_holder(handle)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def hold_across_exec(name: str, what: str) -> int:
    """Take the cache's lock ``name`` for the rest of this process and of the program it
    ``exec``s (the descriptor is inherited; ``subprocess`` children do not get it): a second
    process waits until that program exits. Returns the descriptor."""
    handle = _lock_path(name).open("a+", encoding="utf-8")
    _acquire(handle, f"waiting for {what}", what)
    _write_holder(handle)
    fd = os.dup(handle.fileno())  # the duplicate shares the lock and outlives the file object
    os.set_inheritable(fd, True)
    handle.close()
    return fd
