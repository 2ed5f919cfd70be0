"""Container engine: use a running Docker engine, or start the project's own dockerd.

``tools/dev engine up|down|status|env``

- A Docker engine that already answers (``$DOCKER_HOST`` or ``/var/run/docker.sock``) is used
  as is and never stopped by ``down``.
- Otherwise Debian's ``docker.io`` is installed with apt (non-interactive) and ``dockerd`` is
  started with all of its state under ``$MESHOPS_CACHE/docker`` (data-root, exec-root, pidfile,
  unix socket, log file). Its default bridge gets the explicit private subnet ``BRIDGE_IP``
  and other networks come from ``ADDRESS_POOL`` (addresses.py) (iptables on, userland proxy for 127.0.0.1).
- When the host's capability bounding set lacks capabilities (some sandboxes drop
  CAP_SYS_RESOURCE), ``docker run --privileged`` fails with "unable to apply caps". Then an OCI
  runtime wrapper is registered as the default runtime: it removes the capabilities missing from
  the bounding set from the bundle's config.json (create/run) and from the ``--process`` file
  (exec), then execs the real runc.
- ``$MESHOPS_STATE/engine.env`` records ``DOCKER_HOST=...`` (shells can source it) and whether
  the engine is the project's own (``MESHOPS_ENGINE=owned``) or not (``external``).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from . import cache, errors, progress
from .addresses import ADDRESS_POOL, BRIDGE_IP, KIND_NETWORK

DEFAULT_SOCKET = "/var/run/docker.sock"
RUNTIME_NAME = "meshops-runc"
APT_PACKAGES = ("docker.io", "iptables", "runc", "containerd", "tini")

# Capability numbers (linux/capability.h) -> OCI names.
CAP_NAMES = tuple(
    [
        "CAP_CHOWN",
        "CAP_DAC_OVERRIDE",
        "CAP_DAC_READ_SEARCH",
        "CAP_FOWNER",
        "CAP_FSETID",
        "CAP_KILL",
        "CAP_SETGID",
        "CAP_SETUID",
        "CAP_SETPCAP",
        "CAP_LINUX_IMMUTABLE",
        "CAP_NET_BIND_SERVICE",
        "CAP_NET_BROADCAST",
        "CAP_NET_ADMIN",
        "CAP_NET_RAW",
        "CAP_IPC_LOCK",
        "CAP_IPC_OWNER",
        "CAP_SYS_MODULE",
        "CAP_SYS_RAWIO",
        "CAP_SYS_CHROOT",
        "CAP_SYS_PTRACE",
        "CAP_SYS_PACCT",
        "CAP_SYS_ADMIN",
        "CAP_SYS_BOOT",
        "CAP_SYS_NICE",
        "CAP_SYS_RESOURCE",
        "CAP_SYS_TIME",
        "CAP_SYS_TTY_CONFIG",
        "CAP_MKNOD",
        "CAP_LEASE",
        "CAP_AUDIT_WRITE",
        "CAP_AUDIT_CONTROL",
        "CAP_SETFCAP",
        "CAP_MAC_OVERRIDE",
        "CAP_MAC_ADMIN",
        "CAP_SYSLOG",
        "CAP_WAKE_ALARM",
        "CAP_BLOCK_SUSPEND",
        "CAP_AUDIT_READ",
        "CAP_PERFMON",
        "CAP_BPF",
        "CAP_CHECKPOINT_RESTORE",
    ]
)

# The wrapper is generated (not a copy of anything upstream): a tiny stdlib-only Python program.
WRAPPER = '''\
"""OCI runtime wrapper written by tools/dev engine up (meshops.istio).

Drops the capabilities missing from this host's bounding set from the OCI spec (create/run:
<bundle>/config.json; exec: the --process file), then execs the real runc ({runc}).
"""
import json
import os
import sys

REAL = {runc!r}


def bounding():
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("CapBnd:"):
                return int(line.split()[1], 16)
    return -1


def allowed_names():
    names = {names!r}
    mask = bounding()
    return {{n for i, n in enumerate(names) if mask & (1 << i)}}


def strip(caps, allowed):
    if not isinstance(caps, dict):
        return caps
    return {{k: [c for c in v if c in allowed] if isinstance(v, list) else v for k, v in caps.items()}}


def fix(path, is_process):
    try:
        with open(path) as fh:
            spec = json.load(fh)
    except (OSError, ValueError):
        return
    allowed = allowed_names()
    proc = spec if is_process else spec.get("process")
    if not isinstance(proc, dict) or "capabilities" not in proc:
        return
    new = strip(proc["capabilities"], allowed)
    if new == proc["capabilities"]:
        return
    proc["capabilities"] = new
    tmp = path + ".meshops-tmp"
    with open(tmp, "w") as fh:
        json.dump(spec, fh)
    os.replace(tmp, path)


def option(args, *names):
    for i, a in enumerate(args):
        for n in names:
            if a == n and i + 1 < len(args):
                return args[i + 1]
            if a.startswith(n + "="):
                return a.split("=", 1)[1]
    return None


def main():
    args = sys.argv[1:]
    verbs = [a for a in args if a in ("create", "run", "exec")]
    if verbs:
        rest = args[args.index(verbs[0]) + 1:]
        if verbs[0] in ("create", "run"):
            bundle = option(rest, "--bundle", "-b") or os.getcwd()
            fix(os.path.join(bundle, "config.json"), False)
        else:
            process = option(rest, "--process", "-p")
            if process:
                fix(process, True)
    os.execv(REAL, [REAL] + args)


main()
'''


def engine_dir() -> Path:
    return cache.docker_dir()


def socket_path() -> Path:
    return engine_dir() / "docker.sock"


def pid_file() -> Path:
    return engine_dir() / "dockerd.pid"


def log_file() -> Path:
    return engine_dir() / "dockerd.log"


def _read_env_file() -> dict[str, str]:
    path = cache.engine_env_file()
    data: dict[str, str] = {}
    try:
        for raw in path.read_text(encoding="utf-8").splitlines():
            line = raw.strip()
            if not line or line.startswith("#") or "=" not in line:
                continue
            key, value = line.removeprefix("export ").split("=", 1)
            data[key.strip()] = value.strip().strip('"')
    except OSError:
        pass
    return data


def docker_env() -> dict[str, str]:
    """Environment entries that point the docker CLI (and kind) at the engine in use.

    Order: ``engine.env`` written by ``engine up``, then ``$DOCKER_HOST``, then the default socket.
    """
    recorded = _read_env_file().get("DOCKER_HOST")
    if recorded:
        return {"DOCKER_HOST": recorded}
    if os.environ.get("DOCKER_HOST"):
        return {"DOCKER_HOST": os.environ["DOCKER_HOST"]}
    return {"DOCKER_HOST": f"unix://{DEFAULT_SOCKET}"}


def server_version(host: str, timeout: float = 15) -> str | None:
    """Version of the engine at ``host`` (``unix://...``), or None when it does not answer."""
    res = progress.quiet(
        ["docker", "version", "--format", "{{.Server.Version}}"],
        env={"DOCKER_HOST": host},
        timeout=timeout,
    )
    version = res.stdout.strip()
    return version if res.returncode == 0 and version else None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return False
    except OSError:
        pass
    return True


def _own_pid() -> int | None:
    try:
        pid = int(pid_file().read_text().strip())
    except (OSError, ValueError):
        return None
    if not _pid_alive(pid):
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    if not cmdline or not cmdline[0].endswith(b"dockerd"):
        return None  # a stale pid file now naming some other process
    return pid


def _foreign_engines() -> list[tuple[int, str]]:
    """Other dockerd processes of this project (same bridge address, another data-root).

    Two such engines share the ``docker0`` bridge address and the kind subnet: each one's routes
    and iptables rules break the other's cluster (published ports, pod traffic to the API server).
    """
    own = _own_pid()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == own:
            continue
        try:
            argv = [a.decode(errors="replace") for a in (entry / "cmdline").read_bytes().split(b"\0") if a]
        except OSError:
            continue
        if not argv or not argv[0].endswith("dockerd") or BRIDGE_IP not in argv:
            continue
        root = argv[argv.index("--data-root") + 1] if "--data-root" in argv[:-1] else "?"
        if root != str(engine_dir() / "data"):
            found.append((int(entry.name), root))
    return found


def _refuse_foreign_engines() -> None:
    others = _foreign_engines()
    if not others:
        return
    lines = []
    for pid, root in others:
        cache_root = Path(root).parent.parent if root.endswith("/docker/data") else None
        stop = f"MESHOPS_CACHE={cache_root} python3 tools/dev down" if cache_root else f"kill {pid}"
        lines.append(f"  pid {pid}, data-root {root}: stop it with '{stop}'")
    raise errors.DevError(
        "another engine of this project runs with a different MESHOPS_CACHE; two engines share the bridge "
        f"{BRIDGE_IP} and the kind subnet and break each other's clusters:\n" + "\n".join(lines)
    )


def missing_capabilities() -> list[str]:
    """Capability names absent from this process's bounding set."""
    mask = None
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapBnd:"):
            mask = int(line.split()[1], 16)
    if mask is None:
        return []
    return [name for i, name in enumerate(CAP_NAMES) if not mask & (1 << i)]


def _write_env(host: str, owned: bool, version: str) -> None:
    text = (
        "# written by tools/dev engine up; source it to reach the engine\n"
        f"DOCKER_HOST={host}\n"
        f"MESHOPS_ENGINE={'owned' if owned else 'external'}\n"
        f"MESHOPS_ENGINE_VERSION={version}\n"
    )
    progress.write_text_atomic(cache.engine_env_file(), text)


def _install_packages() -> None:
    missing = [p for p in APT_PACKAGES if not _dpkg_installed(p)]
    if not missing and shutil.which("dockerd"):
        return
    if os.geteuid() != 0:
        raise errors.DevError(
            "dockerd is not installed and this is not root: install Debian's docker.io (apt-get install docker.io) or start a Docker engine and set DOCKER_HOST"
        )
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    install = [
        "apt-get",
        "install",
        "-y",
        "-q",
        "--no-install-recommends",
        "-o",
        "Dpkg::Options::=--force-confold",
        *APT_PACKAGES,
    ]
    try:
        progress.run(install, desc="installing docker.io with apt", env=env)
    except errors.CommandError:
        progress.run(["apt-get", "update", "-q"], desc="updating apt package lists", env=env)
        progress.run(install, desc="installing docker.io with apt", env=env)


def ensure_apt_packages(packages: list[str] | tuple[str, ...], why: str) -> None:
    """Install missing Debian packages (non-interactive; ``apt-get update`` once if needed)."""
    missing = [p for p in packages if not _dpkg_installed(p)]
    if not missing:
        return
    if os.geteuid() != 0:
        raise errors.DevError(f"{why} needs the Debian packages {', '.join(missing)}: apt-get install them as root")
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    cmd = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing]
    try:
        progress.run(cmd, desc=f"installing {', '.join(missing)} ({why})", env=env)
    except errors.CommandError:
        progress.run(["apt-get", "update", "-q"], desc="updating apt package lists", env=env)
        progress.run(cmd, desc=f"installing {', '.join(missing)} ({why})", env=env)


def _dpkg_installed(pkg: str) -> bool:
    res = progress.quiet(["dpkg-query", "-W", "-f", "${Status}", pkg])
    return res.returncode == 0 and "install ok installed" in res.stdout


def _real_runc() -> str:
    for candidate in ("/usr/sbin/runc", "/usr/bin/runc", "/usr/local/sbin/runc"):
        if os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which("runc")
    if not found:
        raise errors.DevError("runc not found after installing docker.io (apt-get install runc)")
    return found


def wrapper_source(runc: str) -> str:
    """The OCI runtime wrapper's program text for the real runc at ``runc``."""
    return WRAPPER.format(runc=runc, names=CAP_NAMES)


def _write_wrapper() -> Path:
    path = engine_dir() / "bin" / RUNTIME_NAME
    python = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable
    body = f"#!{python} -IS\n" + wrapper_source(_real_runc())
    progress.write_text_atomic(path, body, mode=0o755)
    return path


def _dockerd_args(runtime: Path | None) -> list[str]:
    d = engine_dir()
    config = d / "daemon.json"
    if not config.exists():
        progress.write_text_atomic(config, "{}\n")
    args = [
        shutil.which("dockerd") or "/usr/sbin/dockerd",
        "--data-root",
        str(d / "data"),
        "--exec-root",
        str(d / "exec"),
        "--pidfile",
        str(pid_file()),
        "--host",
        f"unix://{socket_path()}",
        "--config-file",
        str(config),
        "--bip",
        BRIDGE_IP,
        "--default-address-pool",
        ADDRESS_POOL,
        "--iptables=true",
        "--ip-masq=true",
        "--storage-driver",
        "overlay2",
        "--log-level",
        "warn",
    ]
    if runtime is not None:
        args += ["--add-runtime", f"{RUNTIME_NAME}={runtime}", "--default-runtime", RUNTIME_NAME]
    return args


def _start_dockerd() -> str:
    d = engine_dir()
    for sub in ("data", "exec", "bin"):
        (d / sub).mkdir(parents=True, exist_ok=True)
    missing = missing_capabilities()
    runtime = None
    if missing:
        progress.note(f"capability bounding set lacks {', '.join(missing)}: using the {RUNTIME_NAME} wrapper")
        runtime = _write_wrapper()
    socket_path().unlink(missing_ok=True)
    args = _dockerd_args(runtime)
    progress.note(f"starting dockerd (log: {log_file()})")
    with log_file().open("ab") as log:
        log.write(f"\n=== {time.strftime('%Y-%m-%dT%H:%M:%S')} {' '.join(args)}\n".encode())
        log.flush()
        proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
            close_fds=True,
        )
    host = f"unix://{socket_path()}"
    deadline = time.monotonic() + 90
    for _ in range(180):
        if proc.poll() is not None:
            raise errors.DevError(f"dockerd exited with {proc.returncode} right after starting; last lines of {log_file()}:\n" + _tail(log_file()))
        if socket_path().exists():
            version = server_version(host, timeout=10)
            if version:
                return version
        if time.monotonic() > deadline:
            break
        time.sleep(0.5)
    raise errors.DevError(f"dockerd (pid {proc.pid}) did not answer on {socket_path()} within 90s; see {log_file()}:\n" + _tail(log_file()))


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def up() -> dict[str, str]:
    """Make sure an engine answers; returns the docker env (``DOCKER_HOST``)."""
    with progress.step("engine up") as st:
        own_host = f"unix://{socket_path()}"
        candidates = []
        if os.environ.get("DOCKER_HOST") and os.environ["DOCKER_HOST"] != own_host:
            candidates.append(os.environ["DOCKER_HOST"])
        candidates.append(f"unix://{DEFAULT_SOCKET}")
        for host in candidates:
            if host.startswith("unix://") and not Path(host[len("unix://") :]).exists():
                continue
            version = server_version(host)
            if version:
                progress.note(f"using the running Docker engine {version} at {host}")
                _write_env(host, owned=False, version=version)
                st.cached = True
                return {"DOCKER_HOST": host}
        if _own_pid():
            version = server_version(own_host)
            if version:
                progress.note(f"the project's dockerd {version} is running (pid {_own_pid()})")
                _write_env(own_host, owned=True, version=version)
                st.cached = True
                return {"DOCKER_HOST": own_host}
            raise errors.DevError(
                f"the project's dockerd (pid {_own_pid()}) runs but does not answer on {socket_path()}; "
                f"see {log_file()}, or run 'tools/dev engine down' and retry"
            )
        _refuse_foreign_engines()
        _install_packages()
        # Where no policy-rc.d stops it, installing docker.io starts the system's dockerd: use it.
        default = f"unix://{DEFAULT_SOCKET}"
        if Path(DEFAULT_SOCKET).exists() and (version := server_version(default)):
            progress.note(f"the docker.io package started the system's Docker engine {version}: using it")
            _write_env(default, owned=False, version=version)
            return {"DOCKER_HOST": default}
        version = _start_dockerd()
        progress.note(f"dockerd {version} answers at {own_host} (pid {_own_pid()})")
        _write_env(own_host, owned=True, version=version)
        return {"DOCKER_HOST": own_host}


def down() -> None:
    """Stop the project's own dockerd (only if ``up`` started it)."""
    with progress.step("engine down"):
        env = _read_env_file()
        pid = _own_pid()
        if pid is None:
            if env.get("MESHOPS_ENGINE") == "external":
                progress.note(f"engine at {env.get('DOCKER_HOST')} was not started by this project: left alone")
            else:
                progress.note("the project's dockerd is not running")
            cache.engine_env_file().unlink(missing_ok=True)
            return
        # a stopped dockerd keeps its user-defined networks, and their bridges stay in the kernel
        host = {"DOCKER_HOST": env.get("DOCKER_HOST", f"unix://{socket_path()}")}
        progress.quiet(["docker", "network", "rm", KIND_NETWORK], env=host, timeout=60)
        progress.note(f"stopping dockerd (pid {pid})")
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 60
        while _pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.5)
        if _pid_alive(pid):
            progress.warn(f"dockerd (pid {pid}) still runs after 60s: sending SIGKILL")
            os.kill(pid, signal.SIGKILL)
            for _ in range(20):
                if not _pid_alive(pid):
                    break
                time.sleep(0.5)
        cache.engine_env_file().unlink(missing_ok=True)


def status() -> int:
    env = docker_env()
    recorded = _read_env_file()
    version = server_version(env["DOCKER_HOST"])
    pid = _own_pid()
    print(f"DOCKER_HOST={env['DOCKER_HOST']}")
    print(f"engine: {'answers, version ' + version if version else 'not answering'}")
    print(f"owner: {recorded.get('MESHOPS_ENGINE', 'unknown (no engine.env)')}")
    print(f"project dockerd pid: {pid if pid else 'not running'}")
    missing = missing_capabilities()
    print(f"capabilities missing from the bounding set: {', '.join(missing) if missing else 'none'}")
    return 0 if version else 1


def print_env() -> int:
    for key, value in docker_env().items():
        print(f"export {key}={value}")
    return 0


def require() -> dict[str, str]:
    """The docker env of an engine that answers, or a clear error."""
    env = docker_env()
    if not server_version(env["DOCKER_HOST"]):
        raise errors.DevError(f"no container engine answers at {env['DOCKER_HOST']}: run 'tools/dev engine up' first")
    return env
