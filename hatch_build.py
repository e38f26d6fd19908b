"""Hatch build hook: record the git revision of the source tree in the wheel and sdist as ``sim/_build_info.py``.

An installed copy of sim (``pip install .``, a wheel) is no longer inside a git tree, so
``sim.core.runtime.git_revision()`` reads the revision from that file; inside a checkout it asks git, and the file is
never written into the tree (it is generated in a temporary folder and force-included; ``.gitignore`` lists it in
case one is put there by hand). Editable installs get no file: they run from the tree, where git answers. A build
from an unpacked sdist (no ``.git``) keeps the file the sdist carries.

The revision is computed by ``sim/core/runtime.py`` itself (standard library only), loaded from its file since the
build environment lacks sim's dependencies.
"""

from __future__ import annotations

import importlib.util
import shutil
import tempfile
from pathlib import Path

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

BUILD_INFO = "sim/_build_info.py"


def load_runtime(root):
    """``sim/core/runtime.py`` of the tree at ``root``, loaded from its file (importing ``sim`` needs its
    dependencies)."""
    spec = importlib.util.spec_from_file_location("_sim_build_runtime", Path(root) / "sim" / "core" / "runtime.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build_info_source(root, workdir) -> Path:
    """The ``sim/_build_info.py`` to ship for the tree at ``root``: written in ``workdir`` with the tree's revision,
    or the tree's own file when ``root`` is no git tree but carries one (an unpacked sdist); ``unknown`` else."""
    runtime = load_runtime(root)
    revision = runtime.tree_revision(root)
    shipped = Path(root) / BUILD_INFO
    if revision is None and runtime.build_revision(shipped) is not None:
        return shipped
    target = Path(workdir) / "_build_info.py"
    target.write_text(runtime.build_info_text(revision or "unknown"), encoding="utf-8")
    return target


class CustomBuildHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict) -> None:
        if self.target_name == "wheel" and version == "editable":
            return
        self._workdir = tempfile.mkdtemp(prefix="sim-build-info-")
        build_data["force_include"][str(build_info_source(self.root, self._workdir))] = BUILD_INFO

    def finalize(self, version: str, build_data: dict, artifact_path: str) -> None:
        workdir = getattr(self, "_workdir", None)
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)
            self._workdir = None
