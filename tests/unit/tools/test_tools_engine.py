"""The OCI runtime wrapper that drops capabilities missing from the host's bounding set."""

import json

import pytest

from meshops_dev import engine

RUNC = "/usr/sbin/runc"


@pytest.fixture(name="wrapper")
def fixture_wrapper():
    """The wrapper's functions, loaded without running its main()."""
    source = engine.wrapper_source(RUNC)
    body, call = source.rsplit("\n\nmain()\n", 1)
    assert call == ""
    namespace = {}
    exec(compile(body, "meshops-runc", "exec"), namespace)
    return namespace


def bounding_without(*names):
    mask = (1 << len(engine.CAP_NAMES)) - 1
    for name in names:
        mask &= ~(1 << engine.CAP_NAMES.index(name))
    return mask


def test_capability_numbers_follow_linux():
    assert engine.CAP_NAMES.index("CAP_SYS_ADMIN") == 21
    assert engine.CAP_NAMES.index("CAP_SYS_RESOURCE") == 24
    assert engine.CAP_NAMES.index("CAP_CHECKPOINT_RESTORE") == 40
    # the bounding set of the sandboxes the project runs in lacks exactly CAP_SYS_RESOURCE
    assert bounding_without("CAP_SYS_RESOURCE") == 0x1FFFEFFFFFF


def test_the_wrapper_execs_the_real_runc(wrapper):
    assert wrapper["REAL"] == RUNC


def caps(*names):
    return {key: list(names) for key in ("bounding", "effective", "permitted", "inheritable", "ambient")}


def test_create_strips_missing_capabilities_from_the_bundle(wrapper, tmp_path):
    wrapper["bounding"] = lambda: bounding_without("CAP_SYS_RESOURCE")
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"ociVersion": "1.0.2", "process": {"args": ["sh"], "capabilities": caps("CAP_SYS_ADMIN", "CAP_SYS_RESOURCE")}}))
    wrapper["fix"](str(config), False)
    spec = json.loads(config.read_text())
    assert spec["process"]["capabilities"] == caps("CAP_SYS_ADMIN")
    assert spec["process"]["args"] == ["sh"]


def test_exec_strips_them_from_the_process_file(wrapper, tmp_path):
    wrapper["bounding"] = lambda: bounding_without("CAP_SYS_RESOURCE", "CAP_BPF")
    process = tmp_path / "process.json"
    process.write_text(json.dumps({"args": ["ls"], "capabilities": caps("CAP_BPF", "CAP_CHOWN", "CAP_SYS_RESOURCE")}))
    wrapper["fix"](str(process), True)
    assert json.loads(process.read_text())["capabilities"] == caps("CAP_CHOWN")


def test_a_spec_within_the_bounding_set_is_left_untouched(wrapper, tmp_path):
    wrapper["bounding"] = lambda: bounding_without("CAP_SYS_RESOURCE")
    config = tmp_path / "config.json"
    text = json.dumps({"process": {"capabilities": caps("CAP_CHOWN")}}, indent=7)
    config.write_text(text)
    wrapper["fix"](str(config), False)
    assert config.read_text() == text


@pytest.mark.parametrize(
    ("args", "names", "value"),
    [
        (["--bundle", "/b", "id"], ("--bundle", "-b"), "/b"),
        (["-b", "/b", "id"], ("--bundle", "-b"), "/b"),
        (["--bundle=/b", "id"], ("--bundle", "-b"), "/b"),
        (["--process", "/p.json", "id"], ("--process", "-p"), "/p.json"),
        (["id"], ("--bundle", "-b"), None),
    ],
)
def test_option_parsing(wrapper, args, names, value):
    assert wrapper["option"](args, *names) == value
