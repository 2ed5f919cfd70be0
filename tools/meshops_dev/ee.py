"""The execution environment image of docs/awx/execution-environment.yml, built on this machine.

``tools/dev build ee`` runs ``ansible-builder build`` on the shipped definition, unchanged; only
its build arguments point at sources of this machine, because no registry is reachable:

- ``EE_BASE_IMAGE``: Debian bookworm minbase from debootstrap (what ``debian:bookworm-slim`` is),
  imported into the engine;
- ``PIP_INDEX_URL``: a PEP 503 index on 127.0.0.1 (the build runs with ``--network host``)
  holding the wheels and sdists ``pip download`` fetched from PyPI on the host, the set the
  build's pip installs ask for (the build containers do not trust the machine's TLS proxy);
- ``HELM_URL`` / ``HELM_DIFF_URL``: release-shaped archives of the helm and helm-diff built from
  source by ``build host-tools``, served by the same server.

The build context gets the collection built from the repository and kubernetes.core repacked
from the venv's ansible package (the definition names both as files of the context). The image
is keyed by what it is built from, not by the collection's code: AWX runs a project's own
collections (``requirements_collections``) before the EE's, and so do the AWX tests.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import re
import shutil
import subprocess
import tarfile
import tempfile
import threading
import time
from pathlib import Path

from . import cache, engine, errors, hosttools, images, progress, stamps

DEFINITION = cache.REPO_ROOT / "docs" / "awx" / "execution-environment.yml"
BASE_NAME = "meshops.local/debian"
IMAGE_NAME = "meshops.local/meshops-istio-ee"
BUILDER_VERSION = "3.2.0"


def definition() -> dict:
    import yaml  # noqa: PLC0415 - tools/dev starts without the venv; only this command needs it

    return yaml.safe_load(DEFINITION.read_text(encoding="utf-8"))


def context_files() -> dict[str, str]:
    """{file name in build/collections: collection} the definition expects in its context."""
    names = {}
    for entry in definition()["additional_build_files"]:
        name = Path(entry["src"]).name
        match = re.fullmatch(r"([a-z0-9_]+)-([a-z0-9_]+)-([0-9][^/]*)\.tar\.gz", name)
        if not match:
            raise errors.DevError(f"{DEFINITION}: additional_build_files src {entry['src']!r} is not a collection tarball")
        names[name] = f"{match.group(1)}.{match.group(2)}"
    return names


def _venv_python() -> Path:
    return cache.venv_dir() / "bin" / "python"


def _venv_collection(fqcn: str) -> Path:
    out = subprocess.run(
        [str(_venv_python()), "-c", "import ansible_collections, sys; sys.stdout.write(list(ansible_collections.__path__)[0])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return Path(out).joinpath(*fqcn.split("."))


def repack_installed(fqcn: str, version: str, tarball: Path) -> None:
    """A collection artifact of an installed collection (MANIFEST.json, FILES.json and the files
    they list, as ``ansible-galaxy collection build`` writes them)."""
    root = _venv_collection(fqcn)
    manifest = json.loads((root / "MANIFEST.json").read_text())
    found = manifest["collection_info"]["version"]
    if found != version:
        raise errors.DevError(f"{DEFINITION} wants {fqcn} {version}; the venv's ansible package has {found}")
    listing = json.loads((root / "FILES.json").read_text())
    # the ansible package leaves out files its FILES.json lists (.github, docs): list what it kept
    listing["files"] = [entry for entry in listing["files"] if entry["name"] == "." or (root / entry["name"]).exists()]
    with tempfile.TemporaryDirectory(prefix="meshops-repack-") as tmp:
        kept = Path(tmp) / "FILES.json"
        kept.write_text(json.dumps(listing, indent=4))
        with tarfile.open(tarball, "w:gz") as tar:
            tar.add(root / "MANIFEST.json", "MANIFEST.json")
            tar.add(kept, "FILES.json")
            for entry in listing["files"]:
                if entry["name"] != ".":
                    tar.add(root / entry["name"], entry["name"], recursive=False)


def pip_requirements() -> list[str]:
    """What the build's pip installs ask for: ansible-core and ansible-runner (base stage),
    ansible-builder's own tools (builder stage), the collections' Python requirements and
    dumb-init (final stage), and what sdists need to build."""
    deps = definition()["dependencies"]
    reqs = [deps["ansible_core"]["package_pip"], deps["ansible_runner"]["package_pip"], "bindep", "pyyaml", "packaging", "dumb-init==1.2.5"]
    reqs += [line.split("#", 1)[0].strip() for line in (cache.REPO_ROOT / "requirements.txt").read_text().splitlines()]
    kcore = _venv_collection("kubernetes.core") / "requirements.txt"
    if kcore.is_file():
        reqs += [line.split("#", 1)[0].strip() for line in kcore.read_text().splitlines()]
    reqs += ["setuptools", "wheel", "pbr"]
    return [r for r in reqs if r]


def _project_name(filename: str) -> str:
    sdist = re.sub(r"-[0-9][^-]*\.(tar\.gz|zip)$", "", filename)
    stem = filename.split("-", maxsplit=1)[0] if filename.endswith(".whl") else sdist
    return re.sub(r"[-_.]+", "-", stem).lower()


def package_index(root: Path) -> Path:
    """``root/simple``: a PEP 503 index of everything ``pip_requirements`` resolves to."""
    downloads = root / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    progress.run(
        [str(_venv_python()), "-m", "pip", "download", "--disable-pip-version-check", "-q", "-d", downloads, *pip_requirements()],
        desc="pip download of the execution environment's Python packages",
        timeout=900,
    )
    simple = root / "simple"
    for dist in sorted(downloads.iterdir()):
        project = simple / _project_name(dist.name)
        project.mkdir(parents=True, exist_ok=True)
        shutil.copy2(dist, project / dist.name)
    return simple


def helm_archives(root: Path) -> tuple[Path, Path]:
    """helm and helm-diff built from source, packed the way their releases are."""
    helm = cache.bin_dir() / "helm"
    plugin = cache.helm_plugins_dir() / "diff"
    if not helm.is_file() or not (plugin / "bin" / "diff").is_file():
        hosttools.build_all()
    root.mkdir(parents=True, exist_ok=True)
    helm_tgz = root / f"helm-{hosttools.HELM_VERSION}-linux-amd64.tar.gz"
    with tarfile.open(helm_tgz, "w:gz") as tar:
        tar.add(helm, "linux-amd64/helm")
    diff_tgz = root / "helm-diff-linux-amd64.tgz"
    with tarfile.open(diff_tgz, "w:gz") as tar:
        tar.add(plugin, "diff")
    return helm_tgz, diff_tgz


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


@contextlib.contextmanager
def serve(root: Path):
    """An HTTP server on 127.0.0.1 for ``root`` while the build runs; yields its base URL."""
    handler = functools.partial(_Quiet, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def base_image() -> str:
    """Debian bookworm minbase (debootstrap) imported as ``meshops.local/debian:bookworm-<key>``."""
    root = images.debootstrap("ee-base", ())
    key = images.image_key(root.name)
    ref = f"{BASE_NAME}:{images.DEBIAN_SUITE}-{key}"
    images.import_rootfs(ref, root, key)
    return ref


def image_key() -> str:
    """What the image is built from: the definition (it names the kubernetes.core version, which
    ``repack_installed`` checks against the venv's), the collections' dependency files, the
    builder, helm and helm-diff versions and the base root file system."""
    inputs = [cache.REPO_ROOT / name for name in ("requirements.txt", "bindep.txt", "meta/execution-environment.yml")]
    versions = (BUILDER_VERSION, hosttools.HELM_VERSION, hosttools.HELM_DIFF_VERSION)
    return images.image_key(images.file_key(DEFINITION, *inputs), *versions, images.rootfs_path("ee-base", ()).name)


def image_ref() -> str:
    version = re.search(r"^version: *([^\s#]+)", (cache.REPO_ROOT / "galaxy.yml").read_text(), re.M).group(1)
    return f"{IMAGE_NAME}:{version}"


def _build(ref: str, key: str) -> None:
    base = base_image()
    with tempfile.TemporaryDirectory(prefix="meshops-ee-") as tmp:
        work = Path(tmp)
        (work / "docs" / "awx").mkdir(parents=True)
        shutil.copy2(DEFINITION, work / "docs" / "awx" / DEFINITION.name)
        collections = work / "build" / "collections"
        collections.mkdir(parents=True)
        for name, fqcn in context_files().items():
            if fqcn == "meshops.istio":
                progress.run(
                    ["ansible-galaxy", "collection", "build", "--force", "--output-path", collections, cache.REPO_ROOT],
                    desc="ansible-galaxy collection build",
                    env=_tool_env(),
                )
                if not (collections / name).is_file():
                    raise errors.DevError(f"{DEFINITION} names {name}; ansible-galaxy collection build wrote {[p.name for p in collections.iterdir()]}")
            else:
                repack_installed(fqcn, name.rsplit("-", 1)[1][: -len(".tar.gz")], collections / name)
        served = work / "served"
        package_index(served)
        helm_tgz, diff_tgz = helm_archives(served / "helm")
        with serve(served) as url:
            args = {
                "EE_BASE_IMAGE": base,
                "PIP_INDEX_URL": f"{url}/simple/",
                "HELM_URL": f"{url}/helm/{helm_tgz.name}",
                "HELM_DIFF_URL": f"{url}/helm/{diff_tgz.name}",
            }
            cmd = [
                "ansible-builder", "build", "-f", work / "docs" / "awx" / DEFINITION.name, "-c", work / "context",
                "--container-runtime", "docker", "-t", ref, "--extra-build-cli-args", f"--network host --label meshops.recipe={key}",
            ]  # fmt: skip
            for name, value in args.items():
                cmd += ["--build-arg", f"{name}={value}"]
            progress.run(cmd, desc=f"ansible-builder build {ref}", env=_tool_env(), timeout=2400, cwd=work)


def _tool_env() -> dict[str, str]:
    env = {"PATH": f"{cache.venv_dir() / 'bin'}:{cache.bin_dir()}:/usr/local/bin:/usr/bin:/bin", "HOME": str(Path.home())}
    env.update(engine.docker_env())
    return env


def build() -> str:
    """The execution environment image in the engine (built once per ``image_key``); its ref."""
    ref = image_ref()
    key = image_key()
    with stamps.exclusive("ee", "the execution environment"), progress.step(f"execution environment {ref}"):
        started = time.monotonic()
        images.ensure_image(ref, key, lambda: _build(ref, key))
        progress.note(f"execution environment {ref} ready after {progress.fmt_duration(time.monotonic() - started)}")
    return ref
