"""The shape of the code: no import cycles, no upward imports, shared run options.

Imports are read statically (every ``import`` in a module, function-level ones included, since
a lazy import is still a dependency; ``if TYPE_CHECKING:`` blocks excluded). Layers, bottom up:
core value objects and I/O; backends, oracles, judges, tasks, boards; the runner; the
commands (API, CLI, Δ-DPO, merging, sweeps, grids). A module may import its own layer or
below, never above.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGES = {"evalkit": REPO / "evalkit", "evalkit.tasks": REPO / "tasks",
            "evalkit.oracles": REPO / "oracles"}

# (prefix, layer): the longest matching prefix decides
LAYERS: list[tuple[str, int]] = [
    ("evalkit", 0),
    ("evalkit.backends", 2), ("evalkit.oracles", 2), ("evalkit.judges", 2),
    ("evalkit.tasks", 2), ("evalkit.leaderboard", 2), ("evalkit.rewards", 2),
    ("evalkit.runner", 3),
    ("evalkit.api", 4), ("evalkit.cli", 4), ("evalkit.cli_options", 4),
    ("evalkit.cli_oracle", 4), ("evalkit.dpo", 4), ("evalkit.merge", 4),
    ("evalkit.grid", 4), ("evalkit.view", 4), ("evalkit.compare", 4), ("evalkit.export", 4),
    ("evalkit.leaderboard.cli", 4), ("evalkit.external", 3), ("evalkit.embedded", 1),
    ("evalkit.named_models", 1), ("evalkit.models", 1),
]


def _layer(mod: str) -> int:
    best = max((p for p, _ in LAYERS if mod == p or mod.startswith(p + ".")), key=len)
    return dict(LAYERS)[best]


def _modules() -> dict[str, Path]:
    out = {}
    for pkg, root in PACKAGES.items():
        for f in root.rglob("*.py"):
            rel = f.relative_to(root).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            if pkg == "evalkit" and parts and parts[0] in ("tasks", "oracles"):
                continue
            out[".".join([pkg, *parts])] = f
    return out


def _imports(mod: str, path: Path, known: set[str]) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip: set[int] = set()
    for node in ast.walk(tree):  # drop `if TYPE_CHECKING:` bodies
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for sub in node.body:
                skip.update(id(n) for n in ast.walk(sub))
    pkg = mod if path.name == "__init__.py" else mod.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            names = [f"{base}.{a.name}" for a in node.names] + [base]
        for n in names:
            while n and n not in known:
                n = n.rpartition(".")[0]
            if n and n != mod:
                found.add(n)
    return found


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    mods = _modules()
    return {m: _imports(m, p, set(mods)) for m, p in mods.items()}


def test_no_upward_imports(graph: dict[str, set[str]]) -> None:
    bad = sorted(f"{m} (layer {_layer(m)}) imports {d} (layer {_layer(d)})"
                 for m, deps in graph.items() for d in deps
                 if _layer(d) > _layer(m) and not d.startswith(m + "."))
    assert not bad, "\n".join(bad)


def test_no_import_cycles(graph: dict[str, set[str]]) -> None:
    # a package importing its own submodules (re-exports, lazy attribute access) is not a
    # cycle of design: only edges between modules that are not parent and child count
    def edges(m: str) -> set[str]:
        return {d for d in graph[m] if not d.startswith(m + ".") and not m.startswith(d + ".")}

    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges(v):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_no_module_over_500_lines() -> None:
    long = sorted(f"{p.relative_to(REPO)}: {n}" for p in _modules().values()
                  if (n := len(p.read_text(encoding="utf-8").splitlines())) > 500)
    assert not long, long


def _params(cmd_name: str) -> set[str]:
    import typer.main

    from evalkit.cli import app

    click_app = typer.main.get_command(app)
    cmd = click_app.commands[cmd_name]  # type: ignore[attr-defined]
    return {p.name for p in cmd.params}


@pytest.mark.parametrize("command", ["sweep", "grid"])
def test_every_run_option_exists_in_other_evaluating_commands(command: str) -> None:
    import typer.main

    from evalkit.cli import app

    names = typer.main.get_command(app).commands  # type: ignore[attr-defined]
    if command not in names:
        pytest.skip(f"no `{command}` command in this build")
    # run-only: its variants (model, adapters, base) and where it reports (W&B)
    own_to_run = {"model", "adapter", "merge_adapter", "base", "wandb_project"}
    missing = _params("run") - own_to_run - _params(command)
    assert not missing, f"`evalkit {command}` lacks run options {sorted(missing)}"
