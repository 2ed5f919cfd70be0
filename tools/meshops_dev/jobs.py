"""The two README commands: ``tools/dev site`` (the main job) and ``tools/dev test``.

Both install what they need: a Python venv with the pinned tools (``tests/requirements.txt``),
the container engine, kind, helm and every image built from source (``tools/dev up``), then run
``site.yml`` against the kind cluster, or the test suite (pytest, whose summary line ends the
output).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import os
import subprocess
import sys
from pathlib import Path

from . import cache, engine, progress

REQUIREMENTS = cache.REPO_ROOT / "tests" / "requirements.txt"


def venv_python() -> Path:
    return cache.venv_dir() / "bin" / "python"


def ensure_venv() -> Path:
    """Create the venv and install the pinned requirements when they changed; return its bin dir."""
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()[:16]
    key = f"venv/{sys.version_info.major}.{sys.version_info.minor}/{digest}"
    if not venv_python().exists():
        cache.clear_stamp(key)

    def build() -> None:
        progress.run([sys.executable, "-m", "venv", "--clear", cache.venv_dir()], desc="creating the venv")
        pip = [venv_python(), "-m", "pip", "--disable-pip-version-check", "--no-input"]
        progress.run([*pip, "install", "--upgrade", "pip"], desc="upgrading pip")
        progress.run([*pip, "install", "-r", REQUIREMENTS], desc="installing the pinned Python tools", heartbeat=20)

    cache.cached(key, build, desc="python venv (tests/requirements.txt)")
    return cache.venv_dir() / "bin"


def link_collection() -> Path:
    """Link the repository where ansible.cfg (and ansible-lint) look for meshops.istio."""
    collections = cache.REPO_ROOT / ".ansible" / "collections"
    link = collections / "ansible_collections" / "meshops" / "istio"
    link.parent.mkdir(parents=True, exist_ok=True)
    if not link.is_symlink():
        if link.exists():
            raise progress.DevError(f"{link} exists and is not a symlink to the repository; remove it")
        link.symlink_to(os.path.relpath(cache.REPO_ROOT, link.parent))
    return collections


def job_env() -> dict[str, str]:
    """Environment of ansible-playbook, molecule and pytest: venv and host tools first on PATH."""
    env = dict(os.environ)
    env.update(engine.docker_env())
    env["PATH"] = os.pathsep.join([str(cache.venv_dir() / "bin"), str(cache.bin_dir()), env.get("PATH", "")])
    env["HELM_PLUGINS"] = str(cache.helm_plugins_dir())
    env["MESHOPS_CACHE"] = str(cache.cache_dir())
    env["MESHOPS_STATE"] = str(cache.state_dir())
    env["ANSIBLE_CONFIG"] = str(cache.REPO_ROOT / "ansible.cfg")
    env["ANSIBLE_COLLECTIONS_PATH"] = str(link_collection())
    # molecule/kind and the kind tests read the inventory of the image source in use
    env["MESHOPS_KIND_INVENTORY"] = cache.kind_inventory().name
    env.setdefault("ANSIBLE_FORCE_COLOR", "0")
    return env


def bring_up() -> None:
    """Engine, host tools, node image, cluster and the Istio/app images (all cached by version)."""
    cli = importlib.import_module(f"{__package__}.cli")  # cli imports this module: resolve at call time
    cli.cmd_up(argparse.Namespace())


def reference_check(env: dict[str, str]) -> int:
    """The reference check of SEED.md, as written there, printed for the user."""
    port = os.environ.get("MESHOPS_INGRESS_HTTP_PORT", "80")
    url = f"http://127.0.0.1:{port}/status/200" if port != "80" else "http://127.0.0.1/status/200"
    cmd = ["curl", "-sS", "-I", "--max-time", "10", "-HHost:httpbin.example.com", url]
    progress.note("reference check: " + " ".join(cmd))
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False, timeout=30)
    sys.stdout.write(proc.stdout + proc.stderr)
    sys.stdout.flush()
    ok = proc.returncode == 0 and proc.stdout.startswith("HTTP/1.1 200") and "server: istio-envoy" in proc.stdout.lower()
    progress.note("reference check " + ("passed" if ok else "FAILED"))
    return 0 if ok else 1


def _rest(args: list[str]) -> list[str]:
    return args[1:] if args[:1] == ["--"] else args


def cmd_site(args: argparse.Namespace) -> int:
    ensure_venv()
    bring_up()
    env = job_env()
    inventory = args.inventory or cache.kind_inventory()
    cmd = ["ansible-playbook", "-i", str(inventory), str(cache.REPO_ROOT / "site.yml"), *_rest(args.ansible_args)]
    with progress.step("site.yml against the kind cluster", record=True):
        proc = subprocess.run(cmd, env=env, cwd=cache.REPO_ROOT, check=False)
    if proc.returncode != 0:
        progress.warn(f"site.yml failed (exit {proc.returncode})")
        return proc.returncode
    return reference_check(env)


def cmd_test(args: argparse.Namespace) -> int:
    ensure_venv()
    if not args.no_cluster:
        bring_up()
    env = job_env()
    cmd = [str(venv_python()), "-m", "pytest", *_rest(args.pytest_args)]
    if args.no_cluster:
        cmd += ["-m", "not kind"]
    progress.note("running: " + " ".join(cmd))
    sys.stdout.flush()
    sys.stderr.flush()
    # pytest's summary line is the last thing printed.
    os.execve(cmd[0], cmd, env)
    return 0  # not reached


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("site", help="the main job: build what is missing, create the kind cluster, run site.yml")
    p.add_argument("--inventory", type=Path, help="inventory (default: the local kind cluster, inventories/kind/hosts.yml or official.yml)")
    p.add_argument("ansible_args", nargs=argparse.REMAINDER, help="extra ansible-playbook arguments (after --)")
    p.set_defaults(func=cmd_site)
    p = subparsers.add_parser("test", help="the test command: unit, rendering, module, lint and sanity tests and the kind scenario")
    p.add_argument("--no-cluster", action="store_true", help="skip the tests that need the kind cluster")
    p.add_argument("pytest_args", nargs=argparse.REMAINDER, help="extra pytest arguments (after --)")
    p.set_defaults(func=cmd_test)
