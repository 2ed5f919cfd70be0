"""Image assembly shared by the node image, Istio and the apps: docker commands, Debian root file
systems (debootstrap), image contexts, cached tarballs and the smoke check of a built image.

Images are never pulled: every one is assembled here (``docker import`` of a root file system,
or a plain Dockerfile for Docker 20.10's legacy builder) and saved under
``$MESHOPS_CACHE/images/`` with a key that hashes its inputs.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

from . import cache, engine, errors, progress

DEBIAN_SUITE = "bookworm"
DEBIAN_MIRROR = os.environ.get("MESHOPS_DEBIAN_MIRROR", "http://deb.debian.org/debian")
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DOCKERFILES = cache.TOOLS_DIR / "images"
BUILD_PACKAGES = ("debootstrap",)  # Debian packages this module runs
# Bump when the assembly below changes in a way its inputs do not show (part of every key).
RECIPE = "3"

# /etc/passwd and /etc/group of scratch-based images: root, Istio's proxy uid, distroless'
# nonroot (go-httpbin runs as 65532) and nobody.
PASSWD = (
    "root:x:0:0:root:/root:/sbin/nologin\n"
    "istio-proxy:x:1337:1337:istio-proxy:/home/istio-proxy:/sbin/nologin\n"
    "nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n"
)
GROUP = "root:x:0:\nistio-proxy:x:1337:\nnonroot:x:65532:\nnobody:x:65534:\n"


def short_hash(*parts: object) -> str:
    """A 10-character key of ``parts`` (bytes as they are, anything else as its ``str``)."""
    h = hashlib.sha256()
    for part in parts:
        h.update(part if isinstance(part, bytes) else str(part).encode())
        h.update(b"\0")
    return h.hexdigest()[:10]


def image_key(*parts: object) -> str:
    """The key of an image: its inputs (versions, ``file_key`` of files) and this module's recipe."""
    return short_hash(RECIPE, *parts)


def file_key(*paths: Path) -> str:
    """Hash of the contents of the inputs (binaries included: a rebuilt binary means a new image)."""
    h = hashlib.sha256()
    for p in paths:
        with p.open("rb") as fh:
            for chunk in iter(lambda fh=fh: fh.read(1 << 20), b""):
                h.update(chunk)
        h.update(b"\0")
    return h.hexdigest()[:10]


# ---------------------------------------------------------------------------------------------
# docker


def docker(*args: str | os.PathLike, desc: str, capture: bool = False, **kwargs) -> str:
    """Run ``docker`` against the engine in use (legacy builder); the output when ``capture``."""
    env = dict(engine.require())
    env["DOCKER_BUILDKIT"] = "0"
    res = progress.run(["docker", *args], desc=desc, env=env, capture=capture, **kwargs)
    return res.stdout.strip() if capture else ""


def docker_quiet(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """A docker query that never raises (look at ``returncode``)."""
    return progress.quiet(["docker", *args], env=engine.docker_env(), timeout=timeout)


def image_present(ref: str) -> bool:
    return docker_quiet("image", "inspect", "--format", "{{.Id}}", ref).returncode == 0


def image_label(ref: str, label: str) -> str | None:
    """Value of an image label, "" when unset, None when the image is absent."""
    res = docker_quiet("image", "inspect", "--format", f'{{{{index .Config.Labels "{label}"}}}}', ref)
    return res.stdout.strip() if res.returncode == 0 else None


def save_image(ref: str, tarball: Path) -> None:
    tarball.parent.mkdir(parents=True, exist_ok=True)
    tmp = tarball.with_name(f"{tarball.name}.{os.getpid()}.tmp")
    docker("save", "-o", tmp, ref, desc=f"saving {ref}")
    tmp.replace(tarball)


def load_image(tarball: Path) -> None:
    docker("load", "-i", tarball, desc=f"loading {tarball.name}")


def import_dir(ref: str, root: Path, changes: list[str]) -> None:
    """``tar -C root -c . | docker import`` with Dockerfile-style ``changes``."""
    args: list[str] = ["import"]
    for change in changes:
        args += ["--change", change]
    tar = subprocess.Popen(["tar", "--numeric-owner", "-C", str(root), "-cf", "-", "."], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        docker(*args, "-", ref, desc=f"importing {ref}", stdin=tar.stdout)
    finally:
        if tar.stdout:
            tar.stdout.close()
        tar.wait(timeout=600)
    if tar.returncode != 0:
        raise errors.DevError(f"tar of {root} failed (exit {tar.returncode}) while importing {ref}")


def import_rootfs(ref: str, root: Path, key: str) -> None:
    """Import ``root`` as ``ref`` (labelled with ``key``) unless the engine has it already."""
    if image_label(ref, "meshops.recipe") != key:
        import_dir(ref, root, [f"LABEL meshops.recipe={key}", f"ENV {PATH_ENV}"])


def docker_build(ref: str, dockerfile: Path, files: dict[str, Path | str], key: str, build_args: dict[str, str] | None = None) -> None:
    """Build ``ref`` with the legacy builder from a context holding ``dockerfile`` and ``files``.

    ``files`` maps a path in the context to a source file, or to text content.
    """
    with tempfile.TemporaryDirectory(prefix="meshops-img-") as tmp:
        ctx = Path(tmp)
        shutil.copy2(dockerfile, ctx / "Dockerfile")
        for dest, src in files.items():
            out = ctx / dest
            out.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(src, Path):
                shutil.copy2(src, out)
            else:
                out.write_text(src)
        args = ["build", "--force-rm", "--label", f"meshops.recipe={key}", "-t", ref]
        for k, v in (build_args or {}).items():
            args += ["--build-arg", f"{k}={v}"]
        docker(*args, ctx, desc=f"docker build {ref}", timeout=1800)


def ensure_image(ref: str, key: str, build: Callable[[], None]) -> Path:
    """Build ``ref`` once per ``key``; keep it as ``$MESHOPS_CACHE/images/<ref>_<tag>-<key>.tar``.

    With the tarball present the image is only loaded into the engine when missing there.
    """
    name, _, tag = ref.rpartition(":")
    tarball = cache.image_tarball(name, f"{tag}-{key}")
    with progress.step(f"image {ref}") as st:
        present = image_label(ref, "meshops.recipe") == key
        if tarball.is_file():
            st.cached = True
            if not present:
                load_image(tarball)
            return tarball
        if not present:
            build()
        save_image(ref, tarball)
        for stale in tarball.parent.glob(cache.image_tarball(name, f"{tag}-*").name):
            if stale != tarball:
                stale.unlink()  # an older recipe of the same image and tag
        size = int(progress.output(["docker", "image", "inspect", "--format", "{{.Size}}", ref], desc="image size", env=engine.docker_env()))
        progress.note(f"{ref}: {size / 2**20:.0f} MiB, saved as {tarball}")
        return tarball


def check_image(ref: str, args: list[str], expect: str, entrypoint: str | None = None) -> None:
    """Run ``ref`` without network and require ``expect`` in its output (every build ends so)."""
    cmd = ["run", "--rm", "--network=none"]
    if entrypoint:
        cmd += ["--entrypoint", entrypoint]
    out = docker(*cmd, ref, *args, desc=f"checking {ref} {' '.join(args)}", capture=True, timeout=120)
    if expect not in out:
        raise errors.DevError(f"{ref} {' '.join(args)}: expected {expect!r} in the output, got: {out[-500:]}")


# ---------------------------------------------------------------------------------------------
# root file systems


def put(root: Path, binary: Path, dest: str) -> None:
    """Copy an executable into an image root at ``dest`` (mode 0755)."""
    out = root / dest.lstrip("/")
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(binary, out)
    out.chmod(0o755)


def base_files(root: Path, ca_bundle: Path, passwd: str = PASSWD, group: str = GROUP) -> None:
    """/etc/passwd, /etc/group, CA certificates and /tmp (1777) for a scratch image root."""
    (root / "etc/ssl/certs").mkdir(parents=True, exist_ok=True)
    (root / "etc/passwd").write_text(passwd)
    (root / "etc/group").write_text(group)
    shutil.copy2(ca_bundle, root / "etc/ssl/certs/ca-certificates.crt")
    (root / "tmp").mkdir(mode=0o1777, exist_ok=True)
    (root / "tmp").chmod(0o1777)


def rootfs_path(name: str, packages: tuple[str, ...], recipe: str = "") -> Path:
    """Where ``debootstrap()`` keeps a root file system: suite, name and a key of its inputs."""
    return cache.rootfs_dir() / f"{DEBIAN_SUITE}-{name}-{short_hash(DEBIAN_SUITE, packages, recipe, RECIPE)}"


def debootstrap(name: str, packages: tuple[str, ...], post: Callable[[Path], None] | None = None, recipe: str = "") -> Path:
    """A Debian minbase root file system with ``packages``, cached under ``$MESHOPS_CACHE/rootfs``.

    ``post(root)`` runs once after debootstrap (users, checks); ``recipe`` describes it in the key.
    """
    root = rootfs_path(name, packages, recipe)
    stamp = root.with_name(root.name + ".done")
    with _debootstrap_lock(root), progress.step(f"debootstrap {DEBIAN_SUITE} rootfs for {name} ({len(packages)} packages)") as st:
        if stamp.is_file() and root.is_dir():
            st.cached = True
            return root
        engine.ensure_apt_packages(BUILD_PACKAGES, f"building the {name} root file system")
        tmp = root.with_name(root.name + ".tmp")
        umount_below(tmp)
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.parent.mkdir(parents=True, exist_ok=True)
        try:
            progress.run(
                ["debootstrap", "--variant=minbase", *([f"--include={','.join(packages)}"] if packages else []), DEBIAN_SUITE, tmp, DEBIAN_MIRROR],
                desc=f"debootstrapping {DEBIAN_SUITE} from {DEBIAN_MIRROR}",
                timeout=1800,
            )
            if post is not None:
                post(tmp)
        finally:
            umount_below(tmp)
        for junk in ("var/cache/apt/archives", "var/lib/apt/lists", "var/cache/apt"):
            for p in (tmp / junk).glob("*"):
                if p.is_file():
                    p.unlink()
        for log in (tmp / "var/log").rglob("*"):
            if log.is_file():
                log.unlink()
        shutil.rmtree(root, ignore_errors=True)
        tmp.rename(root)
        stamp.write_text(" ".join(packages) + "\n")
        return root


_LOCKS: dict[Path, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def _debootstrap_lock(root: Path) -> threading.Lock:
    """One debootstrap of a root at a time (``stack.up`` starts them in the background early; a
    later caller waits for that one and finds it done)."""
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(root, threading.Lock())


def umount_below(path: Path) -> None:
    """Unmount anything debootstrap left mounted below ``path`` (proc, sys)."""
    try:
        mounts = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return
    prefix = str(path.resolve()) + "/"
    targets = [m.split()[1] for m in mounts if len(m.split()) > 1 and m.split()[1].startswith(prefix)]
    for target in sorted(targets, key=len, reverse=True):
        progress.quiet(["umount", "-l", target])


def chroot(root: Path, *cmd: str, desc: str) -> str:
    return progress.output(["chroot", str(root), *cmd], desc=desc, env={"PATH": PATH_ENV.split("=", 1)[1]})


# ---------------------------------------------------------------------------------------------
# the Debian base of the workload images (proxyv2 and the curl client)

# One debootstrap serves both images: Istio's docker/Dockerfile.base wants CA certificates and
# iptables with both backends and user istio-proxy (1337); samples/curl wants curl and user
# curl_user (100:101). Each image carries the other's few extra files.
WORKLOAD_PACKAGES = ("ca-certificates", "curl", "iptables")
IPTABLES_BINARIES = tuple(
    f"{table}-{backend}{suffix}" for table in ("iptables", "ip6tables") for backend in ("legacy", "nft") for suffix in ("", "-save", "-restore")
)


def _workload_post(root: Path) -> None:
    chroot(root, "useradd", "-m", "--uid", "1337", "--user-group", "istio-proxy", desc="adding user istio-proxy")
    chroot(root, "groupadd", "--gid", "101", "curl_user", desc="adding group curl_user")
    curl_user = ["useradd", "--uid", "100", "--gid", "101", "--no-create-home", "--home-dir", "/tmp", "--shell", "/bin/sh", "curl_user"]
    chroot(root, *curl_user, desc="adding user curl_user")
    missing = [b for b in IPTABLES_BINARIES if not (root / "usr/sbin" / b).exists()]
    if missing:
        raise errors.DevError(f"the {DEBIAN_SUITE} iptables package lacks /usr/sbin/{', '.join(missing)}")


def workload_rootfs() -> Path:
    return debootstrap("workload", WORKLOAD_PACKAGES, _workload_post, "istio-proxy 1337, curl_user 100:101")


def workload_ca_bundle() -> Path:
    """CA certificates of Debian's ca-certificates package (for the scratch-based images)."""
    return workload_rootfs() / "etc/ssl/certs/ca-certificates.crt"


def workload_base() -> tuple[str, str]:
    """(reference, key) of the workload base image (``import_workload_base`` puts it in the engine)."""
    key = image_key(workload_rootfs().name)
    return f"meshops.local/workload-base:{DEBIAN_SUITE}-{key}", key


def import_workload_base() -> str:
    ref, key = workload_base()
    import_rootfs(ref, workload_rootfs(), key)
    return ref
