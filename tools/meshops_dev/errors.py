"""Errors of the dev tools (the bottom of the package: it imports nothing of it)."""

from __future__ import annotations

from collections.abc import Sequence


class DevError(RuntimeError):
    """An error the user can act on; the CLI prints the message without a traceback."""


class CommandError(DevError):
    """A command exited non-zero; the message carries the command and the tail of its output."""

    def __init__(self, desc: str, cmd: Sequence[str], returncode: int, tail: str) -> None:
        self.desc = desc
        self.cmd = list(cmd)
        self.returncode = returncode
        self.tail = tail
        shown = " ".join(str(c) for c in cmd)
        if len(shown) > 300:
            shown = shown[:300] + " ..."
        msg = f"{desc} failed (exit {returncode}): {shown}"
        if tail.strip():
            msg += "\n--- last lines of output ---\n" + tail.rstrip() + "\n---"
        super().__init__(msg)


class WaitTimeout(DevError):
    """A bounded wait (``local.wait_for``) ran out of time."""
