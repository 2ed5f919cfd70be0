"""Progress output, step timings and subprocess execution for the dev tools.

Every long operation runs inside ``step(name)``: it prints ``==> name ...`` when it starts and
``<== name done in 12.3s`` (or ``failed``) when it ends, and appends one JSON object per step to
``$MESHOPS_CACHE/timings.jsonl`` (name, seconds, cached, started, ok).

``run()`` executes a command, keeps the tail of its output, prints a heartbeat line for long
commands and raises ``CommandError`` (with that tail) when the command fails.
"""

from __future__ import annotations

import collections
import contextlib
import datetime
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

from . import cache
from .errors import CommandError, DevError


class _Context(threading.local):
    """Step nesting of one thread (a ``background()`` thread starts at its caller's depth)."""

    def __init__(self) -> None:
        self.depth = 0
        self.stack: list[Step] = []


_ctx = _Context()
_lock = threading.Lock()
T = TypeVar("T")


def _verbose() -> bool:
    return os.environ.get("MESHOPS_VERBOSE", "") not in ("", "0", "false", "no")


def _emit(line: str) -> None:
    with _lock:
        print(line, file=sys.stderr, flush=True)


def note(msg: str) -> None:
    """Print an informational line, indented to the current step depth."""
    _emit("    " * max(_ctx.depth - 1, 0) + "  - " + msg)


def warn(msg: str) -> None:
    _emit("    " * max(_ctx.depth - 1, 0) + "  ! " + msg)


def fmt_duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, sec = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{sec:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{sec:02d}s"


def record_timing(name: str, seconds: float, *, cached: bool, started: str, ok: bool = True) -> None:
    """Append one timing record to ``$MESHOPS_CACHE/timings.jsonl`` (best effort)."""
    entry = {
        "name": name,
        "seconds": round(seconds, 2),
        "cached": cached,
        "started": started,
        "ok": ok,
    }
    try:
        path = cache.timings_file()
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry, sort_keys=True) + "\n")
    except OSError as exc:  # timings are informative; never fail a build for them
        warn(f"could not record timing for {name}: {exc}")


class Step:
    """Handle yielded by ``step()``; set ``cached = True`` when the work was skipped."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.cached = False
        self.started = time.monotonic()
        self.children = 0
        self.did_work = False  # a command ran, or a child step was not cached

    def elapsed(self) -> float:
        return time.monotonic() - self.started


@contextlib.contextmanager
def step(name: str, *, record: bool = True) -> Iterator[Step]:
    """Time a named step, print its start and end, and record its duration."""
    indent = "    " * _ctx.depth
    _emit(f"{indent}==> {name} ...")
    started_iso = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    handle = Step(name)
    parent = _ctx.stack[-1] if _ctx.stack else None
    if parent is not None:
        parent.children += 1
    _ctx.stack.append(handle)
    _ctx.depth += 1
    try:
        yield handle
    except BaseException:
        _ctx.stack.pop()
        _ctx.depth -= 1
        secs = handle.elapsed()
        _emit(f"{indent}<== {name} failed after {fmt_duration(secs)}")
        if record:
            record_timing(name, secs, cached=handle.cached, started=started_iso, ok=False)
        raise
    _ctx.stack.pop()
    _ctx.depth -= 1
    if not handle.cached and handle.children and not handle.did_work:
        handle.cached = True  # every sub-step was served from the cache
    if parent is not None and not handle.cached:
        parent.did_work = True
    secs = handle.elapsed()
    suffix = " (cached)" if handle.cached else ""
    _emit(f"{indent}<== {name} done in {fmt_duration(secs)}{suffix}")
    if record:
        record_timing(name, secs, cached=handle.cached, started=started_iso)


def _reader(stream, tail: collections.deque, chunks: list[str] | None, log, echo: bool) -> None:
    for raw in iter(stream.readline, b""):
        line = raw.decode("utf-8", errors="replace")
        tail.append(line)
        if chunks is not None:
            chunks.append(line)
        if log is not None:
            log.write(line)
        if echo:
            with _lock:
                sys.stderr.write("      | " + line)
                sys.stderr.flush()
    stream.close()


def run(
    cmd: Sequence[str | os.PathLike],
    *,
    desc: str,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike | None = None,
    heartbeat: float = 30,
    check: bool = True,
    capture: bool = False,
    stream: bool | None = None,
    input: str | bytes | None = None,
    stdin=None,
    timeout: float | None = None,
    log_file: str | os.PathLike | None = None,
    tail_lines: int = 40,
    probe: bool = False,
) -> subprocess.CompletedProcess:
    """Run ``cmd``, printing a heartbeat for long commands.

    ``env`` entries are added to (and override) the current environment. Output (stdout and stderr
    merged) is kept as a tail for error messages; with ``capture`` the whole output is returned
    in ``.stdout`` (str). ``stream`` echoes every line (default: only with MESHOPS_VERBOSE=1).
    ``timeout`` kills the command after that many seconds and raises ``CommandError``.
    ``input`` is written to the command's stdin; ``stdin`` (a file object) is passed as is.
    A command marks the current step as having done work (so it is not reported as cached)
    unless ``probe`` is true (``output()`` defaults to probe: short queries).
    """
    argv = [os.fspath(c) for c in cmd]
    if not probe and _ctx.stack:
        _ctx.stack[-1].did_work = True
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    echo = _verbose() if stream is None else stream
    tail: collections.deque = collections.deque(maxlen=tail_lines)
    chunks: list[str] | None = [] if capture else None
    log = open(log_file, "a", encoding="utf-8") if log_file else None  # noqa: SIM115
    try:
        try:
            proc = subprocess.Popen(
                argv,
                cwd=cwd,
                env=full_env,
                stdin=subprocess.PIPE if input is not None else (stdin or subprocess.DEVNULL),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
        except FileNotFoundError as exc:
            raise DevError(f"{desc}: command not found: {argv[0]} ({exc})") from exc
        reader = threading.Thread(target=_reader, args=(proc.stdout, tail, chunks, log, echo), daemon=True)
        reader.start()
        if input is not None:
            data = input.encode() if isinstance(input, str) else input
            try:
                proc.stdin.write(data)
                proc.stdin.close()
            except BrokenPipeError:
                pass
        start = time.monotonic()
        last_beat = start
        timed_out = False
        while True:
            try:
                proc.wait(timeout=1.0)
                break
            except subprocess.TimeoutExpired:
                pass
            now = time.monotonic()
            if timeout is not None and now - start > timeout:
                proc.kill()
                proc.wait()
                timed_out = True
                break
            if heartbeat and now - last_beat >= heartbeat:
                last_beat = now
                _emit("    " * _ctx.depth + f"... still {desc} ({fmt_duration(now - start)})")
        reader.join(timeout=10)
    finally:
        if log is not None:
            log.close()
    out = "".join(chunks) if chunks is not None else "".join(tail)
    rc = proc.returncode
    if timed_out:
        raise CommandError(f"{desc} (timed out after {fmt_duration(timeout or 0)})", argv, rc, "".join(tail))
    if check and rc != 0:
        raise CommandError(desc, argv, rc, "".join(tail))
    return subprocess.CompletedProcess(argv, rc, stdout=out, stderr="")


def output(cmd: Sequence[str | os.PathLike], *, desc: str, **kwargs) -> str:
    """Run a short command and return its stripped output (stdout+stderr merged)."""
    kwargs.setdefault("heartbeat", 0)
    kwargs.setdefault("probe", True)
    return run(cmd, desc=desc, capture=True, **kwargs).stdout.strip()


def quiet(cmd: Sequence[str | os.PathLike], *, env: Mapping[str, str] | None = None, timeout: float = 30) -> subprocess.CompletedProcess:
    """Run a probe command silently; never raises for a non-zero exit (returns the result)."""
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    try:
        return subprocess.run(
            [os.fspath(c) for c in cmd],
            env=full_env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except (FileNotFoundError, subprocess.TimeoutExpired) as exc:
        return subprocess.CompletedProcess(list(map(os.fspath, cmd)), 127, stdout="", stderr=str(exc))


def write_text_atomic(path: Path, text: str, mode: int | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    if mode is not None:
        tmp.chmod(mode)
    tmp.replace(path)


class Background:
    """A step run in a thread beside the main work (``background()``); ``result()`` joins it."""

    def __init__(self, name: str, fn: Callable[[], T]) -> None:
        self._depth = _ctx.depth
        self._result: list = []
        self._error: list[BaseException] = []
        self._thread = threading.Thread(target=self._run, args=(name, fn), name=name, daemon=True)
        self._thread.start()

    def _run(self, name: str, fn: Callable[[], T]) -> None:
        _ctx.depth = self._depth
        try:
            with step(f"{name} (in the background)"):
                self._result.append(fn())
        except BaseException as exc:  # handed to the thread that joins
            self._error.append(exc)

    def result(self) -> T:
        self._thread.join()
        if self._error:
            raise self._error[0]
        return self._result[0]

    def settle(self) -> None:
        """Join; a failure is only reported (for work the main thread redoes when it needs it)."""
        self._thread.join()
        if self._error:
            warn(f"{self._thread.name} failed in the background (done again where it is needed): {str(self._error[0]).splitlines()[0]}")


def background(name: str, fn: Callable[[], T]) -> Background:
    """Run ``fn`` in a thread, as a step of its own (for work that waits on the network or the
    disk while the main thread compiles); call ``result()`` before depending on it."""
    return Background(name, fn)
