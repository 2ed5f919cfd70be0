"""The jobs that run the collection: the two README commands (``tools/dev site`` and ``test``)
and ``tools/dev istio install|smoke|uninstall``, plus the venv they run in.

The venv (``$MESHOPS_CACHE/venv``) holds the pinned tools of ``tests/requirements.txt`` and this
package (``pip install -e tools``), so the tests, the benchmarks and the lab import
``meshops_dev`` like any installed package. Every job runs the venv's ansible-playbook against
the kind cluster with the inventory of the image source in use (inventories/kind/).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from . import cache, collection, ee, engine, errors, progress, stack, stamps

REQUIREMENTS = cache.REPO_ROOT / "tests" / "requirements.txt"
TOOLS_PROJECT = cache.TOOLS_DIR / "pyproject.toml"
# Runs roles of the collection, as site.yml does, on the inventory's clusters (tools/dev istio ...).
ROLES_PLAYBOOK = cache.TOOLS_DIR / "playbooks" / "roles.yml"
RENDER_PLAYBOOK = cache.TOOLS_DIR / "playbooks" / "render.yml"


def venv_python() -> Path:
    return cache.venv_dir() / "bin" / "python"


def venv_key() -> str:
    """Stamp key of the venv: Python version, pinned requirements and the tools' project file."""
    digest = hashlib.sha256(REQUIREMENTS.read_bytes() + b"\0" + TOOLS_PROJECT.read_bytes()).hexdigest()[:16]
    return f"venv/{sys.version_info.major}.{sys.version_info.minor}/{digest}"


def ensure_venv() -> Path:
    """Create the venv and install the pinned requirements and this package when they changed."""
    key = venv_key()
    if not venv_python().exists():
        stamps.clear_stamp(key)

    def build() -> None:
        progress.run([sys.executable, "-m", "venv", "--clear", cache.venv_dir()], desc="creating the venv")
        pip = [venv_python(), "-m", "pip", "--disable-pip-version-check", "--no-input"]
        progress.run([*pip, "install", "--upgrade", "pip"], desc="upgrading pip")
        progress.run([*pip, "install", "-r", REQUIREMENTS], desc="installing the pinned Python tools", heartbeat=20)
        # editable: the package's paths (cache.REPO_ROOT) are those of this checkout
        progress.run([*pip, "install", "--editable", cache.TOOLS_DIR], desc="installing the tools package (meshops_dev)")

    stamps.cached(key, build, desc="python venv (tests/requirements.txt + tools)")
    _ensure_tools_package()
    return cache.venv_dir() / "bin"


def installed_tools_dir() -> Path | None:
    """The directory of the ``meshops_dev`` package the venv imports (None: not importable)."""
    proc = subprocess.run(
        [str(venv_python()), "-c", "import meshops_dev, os; print(os.path.dirname(os.path.realpath(meshops_dev.__file__)))"],
        capture_output=True,
        text=True,
        check=False,
        cwd="/",  # not this checkout's directory: what the venv itself resolves
    )
    return Path(proc.stdout.strip()) if proc.returncode == 0 and proc.stdout.strip() else None


def _ensure_tools_package() -> None:
    """Point the venv's editable ``meshops_dev`` at this checkout.

    The venv lives in the shared cache, so two checkouts (a clone that CI runs, a worktree) use
    the same one; an editable install of another checkout would make the tests import that
    checkout's package, and with it that checkout's collection and inventories.
    """
    here = (cache.TOOLS_DIR / "meshops_dev").resolve()
    there = installed_tools_dir()
    if there == here:
        return
    progress.note(f"the venv's tools package is {there or 'missing'}: installing {here.parent} (editable)")
    pip = [venv_python(), "-m", "pip", "--disable-pip-version-check", "--no-input"]
    progress.run([*pip, "install", "--no-deps", "--editable", cache.TOOLS_DIR], desc="installing the tools package of this checkout")


def job_env() -> dict[str, str]:
    """Environment of ansible-playbook, molecule and pytest: venv and host tools first on PATH."""
    env = dict(os.environ)
    env.update(engine.docker_env())
    env["PATH"] = os.pathsep.join([str(cache.venv_dir() / "bin"), str(cache.bin_dir()), env.get("PATH", "")])
    env["HELM_PLUGINS"] = str(cache.helm_plugins_dir())
    env["MESHOPS_CACHE"] = str(cache.cache_dir())
    env["MESHOPS_STATE"] = str(cache.state_dir())
    env["ANSIBLE_CONFIG"] = str(cache.REPO_ROOT / "ansible.cfg")
    env["ANSIBLE_COLLECTIONS_PATH"] = collection.collections_path()
    # molecule/kind and the kind tests read the inventory of the image source in use
    env["MESHOPS_KIND_INVENTORY"] = cache.kind_inventory().name
    env.setdefault("ANSIBLE_FORCE_COLOR", "0")
    return env


def playbook(path: Path, *args: str, inventory: Path | None = None, extra_vars: dict | None = None, desc: str) -> int:
    """Run the venv's ansible-playbook against the kind cluster (output streams); its exit code."""
    cmd = [str(cache.venv_dir() / "bin" / "ansible-playbook"), "-i", str(inventory or cache.kind_inventory()), str(path)]
    if extra_vars:
        cmd += ["--extra-vars", json.dumps(extra_vars)]
    cmd += list(args)
    with progress.step(desc, record=True):
        proc = subprocess.run(cmd, env=job_env(), cwd=cache.REPO_ROOT, check=False)
    if proc.returncode != 0:
        progress.warn(f"{desc} failed (exit {proc.returncode})")
    return proc.returncode


def run_roles(roles: list[str], *args: str, desc: str) -> int:
    """Roles of meshops.istio, in order, on the kind cluster (tools/playbooks/roles.yml)."""
    return playbook(ROLES_PLAYBOOK, *args, extra_vars={"meshops_dev_roles": roles}, desc=desc)


def render_traffic(extra_vars: dict | None = None) -> list[dict]:
    """The Istio objects the traffic role renders (its defaults: the reference scenario)."""
    with tempfile.TemporaryDirectory(prefix="meshops-render-") as tmp:
        out = Path(tmp) / "objects.json"
        rc = playbook(
            RENDER_PLAYBOOK, inventory=Path("localhost,"), extra_vars={**(extra_vars or {}), "render_output": str(out)}, desc="render the traffic objects"
        )
        if rc != 0 or not out.is_file():
            raise errors.DevError(f"rendering the traffic role's objects failed (exit {rc})")
        return json.loads(out.read_text(encoding="utf-8"))


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


def site(inventory: Path | None, ansible_args: list[str]) -> int:
    """The main job: everything built and up, site.yml against the kind cluster, the reference check."""
    ensure_venv()
    stack.up()
    rc = playbook(cache.REPO_ROOT / "site.yml", *ansible_args, inventory=inventory, desc="site.yml against the kind cluster")
    return rc or reference_check(job_env())


SESSION_MARKER_ENV = "MESHOPS_TEST_SESSION_MARKER"


def session_marker() -> Path:
    """Written before a test run with the kind clusters starts; the run's pytest session removes
    it when it ends (tests/conftest.py), after its fixtures deleted or, with
    MESHOPS_KEEP_CLUSTER=1, kept the clusters on purpose. Found at the start of the next run, it
    says the last one was killed: its clusters hold whatever it left."""
    path = cache.state_dir() / "test-session-unfinished"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def start_afresh_after_an_unfinished_run() -> None:
    """Delete the kind clusters (and the external host) that a killed test run left, in whatever
    state it left them (an extra Istio revision, a fleet member half upgraded); ``up`` then
    creates new ones."""
    marker = session_marker()
    if not marker.is_file():
        return
    progress.warn(
        f"the last test run with the kind clusters ({marker.read_text(encoding='utf-8').strip()}) did not end: "
        "deleting the clusters it left so that this run starts from new ones"
    )
    engine.up()
    stack.down(keep_engine=True)
    marker.unlink()


def test(no_cluster: bool, pytest_args: list[str]) -> int:
    """The test command: pytest in the venv (after ``up`` unless ``no_cluster``); pytest's summary ends the output."""
    ensure_venv()
    if not no_cluster:
        # one test run at a time on the kind clusters: a second one waits for the first to exit
        stamps.hold_across_exec("kind-clusters", "the test run that uses the kind clusters to end")
        start_afresh_after_an_unfinished_run()
        os.environ[SESSION_MARKER_ENV] = str(session_marker())
        session_marker().write_text(stamps.holder() + "\n", encoding="utf-8")
        # the first kind tests need one Istio version; the other and the execution environment
        # (the fleet and AWX job tests) build in the background while the tests run
        os.environ[stack.BUILD_LATER_ENV] = "background"
        stack.up()
        if not cache.official_images():
            stack.build_later_in_background()
        else:
            ee.build()
    cmd = [str(venv_python()), "-m", "pytest", *pytest_args]
    if no_cluster:
        cmd += ["-m", "not kind"]
    progress.note("running: " + " ".join(cmd))
    sys.stdout.flush()
    sys.stderr.flush()
    # after up: the environment carries MESHOPS_BUILD_LATER (the tools/dev up of molecule create
    # then builds only what the first tests need) and the engine's DOCKER_HOST
    os.execve(cmd[0], cmd, job_env())
    return 0  # not reached
