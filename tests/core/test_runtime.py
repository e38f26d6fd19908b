"""Entry-point device configuration, the revision recorded in results (checkout, build hook, installed copy) and the
CPU model.

JAX reads ``XLA_FLAGS`` only when its backends start: in this process they are set by ``tests/conftest.py``, so the
flags' effect is checked in subprocesses.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
import types
from pathlib import Path

import jax
import pytest

from sim.core import runtime

REPO = Path(__file__).resolve().parents[2]


def test_cpu_devices_one_per_core_unless_the_user_set_flags(monkeypatch):
    monkeypatch.setattr(runtime, "jax_started", lambda: False)
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    flags = runtime.configure_cpu_devices(3).split()
    assert "--xla_force_host_platform_device_count=3" in flags
    assert "--xla_cpu_enable_concurrency_optimized_scheduler=false" in flags
    monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=1")
    assert runtime.configure_cpu_devices() is None
    assert runtime.os.environ["XLA_FLAGS"] == "--xla_force_host_platform_device_count=1"


def test_configuring_after_jax_started_warns_or_raises_and_sets_nothing(monkeypatch):
    jax.devices()  # the backends are up (with conftest's devices)
    assert runtime.jax_started()
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    with pytest.warns(RuntimeWarning, match="already initialized"):
        assert runtime.configure_cpu_devices() is None
    assert "XLA_FLAGS" not in os.environ  # results then record the flags JAX actually started with: none
    with pytest.raises(RuntimeError, match="configure_cpu_devices\\(\\) before anything runs on JAX"):
        runtime.configure_cpu_devices(strict=True)
    assert "XLA_FLAGS" not in os.environ
    monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=1")  # the user's own flags: left alone
    assert runtime.configure_cpu_devices(strict=True) is None


def _run_json(args: list[str]) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    proc = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, timeout=120, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_python_with_configure_cpu_devices_gets_the_cli_setup():
    # the README's first line of Python, after importing jax (which starts no backend), against `sim info --json`
    cli = _run_json(["-m", "sim.cli", "info", "--json"])
    code = (
        "import json, jax\n"
        "from sim.core import runtime\n"
        "before = runtime.jax_started()\n"
        "runtime.configure_cpu_devices(strict=True)\n"
        "info = runtime.info()\n"
        "print(json.dumps({**info, 'started_before': before, 'started_after': runtime.jax_started(), "
        "'provenance_flags': runtime.provenance()['xla_flags']}))\n"
    )
    py = _run_json(["-c", code])
    assert py["started_before"] is False and py["started_after"] is True
    assert cli["xla_flags"] and "--xla_force_host_platform_device_count" in cli["xla_flags"]
    for key in ("devices", "xla_flags", "cpu_cores", "default_dtype", "cpu_model"):
        assert py[key] == cli[key], key
    assert len(py["devices"]) == py["cpu_cores"] == runtime.cpu_count()
    assert py["provenance_flags"] == cli["xla_flags"]


# --------------------------------------------------------------------------------------------------------------
# The git revision: the checkout's, else the one recorded at build time


def _git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()


def _repo_head() -> str:
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not run from a git checkout")
    return _git("rev-parse", "--short=12", "HEAD", cwd=REPO)


def test_revision_inside_the_checkout_is_the_trees(tmp_path):
    head = _repo_head()
    built = tmp_path / "_build_info.py"
    built.write_text(runtime.build_info_text("0123456789ab"))
    revision = runtime.source_revision(REPO, built)  # the tree wins over a (stale) build record
    assert revision in (head, head + "-dirty")
    assert runtime.git_revision() == runtime.tree_revision(runtime.SOURCE_ROOT) == revision


def test_revision_outside_a_git_tree_is_the_build_records(tmp_path):
    root = tmp_path / "site-packages"  # an installed copy: no git tree
    root.mkdir()
    built = root / "sim" / "_build_info.py"
    built.parent.mkdir()
    assert runtime.tree_revision(root) is None
    assert runtime.source_revision(root, built) == "unknown"  # no record
    built.write_text("GIT_REVISION = undefined_name\n")
    assert runtime.source_revision(root, built) == "unknown"  # not a record: parsed, never executed
    built.write_text(runtime.build_info_text("0123456789ab-dirty"))
    assert runtime.source_revision(root, built) == "0123456789ab-dirty"


def test_an_installed_copy_inside_another_repository_does_not_take_its_revision(tmp_path):
    if shutil.which("git") is None:
        pytest.skip("no git")
    _git("init", "-q", ".", cwd=tmp_path)
    _git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "other", cwd=tmp_path)
    root = tmp_path / ".venv" / "site-packages"
    (root / "sim").mkdir(parents=True)
    built = root / "sim" / "_build_info.py"
    built.write_text(runtime.build_info_text("0123456789ab"))
    assert runtime.tree_revision(tmp_path) == _git("rev-parse", "--short=12", "HEAD", cwd=tmp_path)
    assert runtime.tree_revision(root) is None
    assert runtime.source_revision(root, built) == "0123456789ab"


@pytest.fixture
def hook_module(monkeypatch):
    """hatch_build.py loaded against a stand-in for hatchling's BuildHookInterface (no hatchling needed)."""

    class BuildHookInterface:
        def __init__(self, root: str, target_name: str):
            self.root, self.target_name = root, target_name

    for name in ("hatchling", "hatchling.builders", "hatchling.builders.hooks", "hatchling.builders.hooks.plugin"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    interface = types.ModuleType("hatchling.builders.hooks.plugin.interface")
    interface.BuildHookInterface = BuildHookInterface
    monkeypatch.setitem(sys.modules, interface.__name__, interface)
    spec = importlib.util.spec_from_file_location("_test_hatch_build", REPO / "hatch_build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _build(hook_module, root: Path, target: str, version: str) -> dict:
    hook = hook_module.CustomBuildHook(str(root), target)
    build_data = {"force_include": {}, "artifacts": []}
    hook.initialize(version, build_data)
    shipped = {dest: Path(src).read_text() for src, dest in build_data["force_include"].items()}
    hook.finalize(version, build_data, "artifact")
    for src in build_data["force_include"]:
        if not Path(src).is_relative_to(root):
            assert not Path(src).exists()  # its temporary folder is removed
    return shipped


def test_build_hook_records_the_trees_revision_in_wheels_and_sdists(hook_module):
    head = _repo_head()
    for target, version in (("wheel", "standard"), ("sdist", "standard")):
        shipped = _build(hook_module, REPO, target, version)
        assert set(shipped) == {"sim/_build_info.py"}, target
        assert _revision_in(shipped["sim/_build_info.py"]) in (head, head + "-dirty"), target
    assert _build(hook_module, REPO, "wheel", "editable") == {}  # runs from the tree, where git answers
    assert not (REPO / "sim" / "_build_info.py").exists()  # nothing written into the tree


def _revision_in(text: str) -> str | None:
    """The revision an installed copy reads from a shipped ``sim/_build_info.py`` with this text."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "_build_info.py"
        path.write_text(text)
        return runtime.build_revision(path)


def test_build_hook_from_an_unpacked_sdist_keeps_its_record(hook_module, tmp_path):
    (tmp_path / "sim" / "core").mkdir(parents=True)
    shutil.copy(REPO / "sim" / "core" / "runtime.py", tmp_path / "sim" / "core" / "runtime.py")
    assert _revision_in(_build(hook_module, tmp_path, "wheel", "standard")["sim/_build_info.py"]) == "unknown"
    (tmp_path / "sim" / "_build_info.py").write_text(runtime.build_info_text("0123456789ab"))
    assert _revision_in(_build(hook_module, tmp_path, "wheel", "standard")["sim/_build_info.py"]) == "0123456789ab"


def test_build_hook_is_configured_and_its_output_ignored():
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert config["tool"]["hatch"]["build"]["hooks"]["custom"]["path"] == "hatch_build.py"
    ignored = (REPO / ".gitignore").read_text().splitlines()
    assert "sim/_build_info.py" in ignored and "figures/quick/" in ignored


# --------------------------------------------------------------------------------------------------------------
# The CPU model


def test_cpu_model_from_cpuinfo_else_platform(tmp_path, monkeypatch):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: AMD EPYC  9R45 96-Core Processor\nflags\t\t: avx512f\n")
    assert runtime.cpu_model(cpuinfo) == "AMD EPYC 9R45 96-Core Processor"
    cpuinfo.write_text("processor\t: 0\nBogoMIPS\t: 50.00\n")  # no model name (aarch64 kernels)
    monkeypatch.setattr(runtime.platform, "processor", lambda: "aarch64")
    assert runtime.cpu_model(cpuinfo) == "aarch64"
    monkeypatch.setattr(runtime.platform, "processor", lambda: "")
    monkeypatch.setattr(runtime.platform, "machine", lambda: "arm64")
    assert runtime.cpu_model(tmp_path / "missing") == "arm64"


def test_provenance_records_cpu_model_flags_and_revision(monkeypatch):
    monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_prefer_vector_width=512")
    prov = runtime.provenance()
    assert prov["cpu_model"] == runtime.cpu_model() and prov["cpu_model"] != ""
    assert prov["xla_flags"] == "--xla_cpu_prefer_vector_width=512"
    assert prov["git_revision"] == runtime.git_revision()
    assert all(isinstance(v, str | int) for v in prov.values())  # netCDF-safe
