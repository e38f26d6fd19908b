"""The package's import structure: no cycles (function-local imports included), and a CLI that answers at once.

The import graph is read from the source with ``ast`` (every ``import`` and ``from … import`` anywhere in a module,
inside functions too), so a cycle hidden in a function body is found as well as one at module level.
"""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import sim

PACKAGE = Path(sim.__file__).resolve().parent
HEAVY = ("jax", "jaxlib", "xarray", "sympy", "matplotlib", "optax", "netCDF4", "zarr")


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The sim modules that ``name`` imports (a ``from pkg import mod`` counts as importing ``pkg.mod``)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else [])
                )
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
        else:
            continue
        found.update(t for t in targets if t in modules and t != name)
    return found


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle of ``graph`` as a list of nodes (first = last), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node):
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_cycle_finder_finds_a_planted_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle_in_sim_including_function_local_imports():
    modules = _modules()
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    # a package's __init__ imported by its own submodules is not a cycle the import system trips on only if the
    # package imports nothing eagerly; every package here is lazy, so its edges are real and must not close a loop
    assert len(graph) > 40
    assert _cycle(graph) is None


def _imported_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys; print('MODULES', ' '.join(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return set(out.stdout.splitlines()[-1].split()[1:])


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["sweep", "--help"],
        ["theory", "--help"],
        ["mc", "scalar", "--help"],
        ["features", "--help"],
        ["figures", "--help"],
        ["info", "--help"],
        ["sweep", "gd", "--eta", "0:1:10", "--sigma2", "1", "-o", "/tmp/never-written.nc"],  # η = 0: bad input
        ["theory", "gd"],  # no --spectrum
    ],
)
def test_cli_help_and_argument_errors_import_no_heavy_library(argv):
    """``sim --help``, every ``sim <command> --help`` and argument errors answer before JAX, xarray or sympy load."""
    code = (
        "import sys\nfrom sim.cli import main\n"
        f"try:\n    code = main({argv!r})\nexcept SystemExit as e:\n    code = e.code\n"
        "assert code in (0, 2), code"
    )
    loaded = _imported_after(code)
    assert not [m for m in loaded if m.split(".")[0] in HEAVY]


def test_import_sim_is_cheap_and_its_names_resolve_on_use():
    loaded = _imported_after("import sim")
    assert not [m for m in loaded if m.split(".")[0] in HEAVY]
    loaded = _imported_after("import sim\nassert sim.Grid is sim.core.grid.Grid and callable(sim.linear.sweep.sweep)")
    assert "jax" in loaded
