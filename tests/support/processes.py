"""Child processes of the tests (each stopped by its own handle) and go-httpbin on loopback."""

import pathlib
import subprocess
import urllib.error
import urllib.request

from meshops_dev import apps
from meshops_dev.local import wait_for


class Process:
    """A child process with its log; stopped by its own handle only."""

    def __init__(self, argv, log_path):
        self.log_path = log_path
        self.log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([str(a) for a in argv], stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.log.close()

    def tail(self):
        return pathlib.Path(self.log_path).read_text(errors="replace")[-4000:]


def http_get(url, host=None, timeout=2.0):
    """(status, body) of a GET; HTTP errors are answers too."""
    req = urllib.request.Request(url, headers={"Host": host} if host else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def httpbin_binary():
    """go-httpbin of the pinned module, the same build as the image's (tools/go/apps, cached)."""
    return apps.build_go_httpbin()


def start_httpbin(binary, port, log_path):
    """go-httpbin on 127.0.0.1:port, answering before this returns."""
    proc = Process([binary, "-host", "127.0.0.1", "-port", str(port)], log_path)
    try:
        wait_for(lambda: http_get(f"http://127.0.0.1:{port}/status/200")[0] == 200, "go-httpbin", timeout=30)
    except RuntimeError:
        proc.stop()
        raise RuntimeError(f"go-httpbin did not start:\n{proc.tail()}") from None
    return proc
