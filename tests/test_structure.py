"""The shape of the house (issue: the structural redesign): no import cycle among arrayq's
modules and its shipped backends, function-level imports included; a contract module that
only declares; modules of a readable size; backends and the example that import only
public names."""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGES = {"arrayq": ROOT / "arrayq", "arrayq_numpy": ROOT / "backends" / "arrayq_numpy",
            "arrayq_mlx": ROOT / "backends" / "arrayq_mlx", "arrayq_jax": ROOT / "backends" / "arrayq_jax",
            "arrayq_strict": ROOT / "examples" / "arrayq-strict" / "arrayq_strict"}  # fmt: skip


def _modules() -> dict[str, pathlib.Path]:
    out = {}
    for top, folder in PACKAGES.items():
        for path in folder.rglob("*.py"):
            parts = path.relative_to(folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join((top, *parts))] = path
    return out


MODULES = _modules()
#: Compiled extension modules (setup.py builds them): imported like modules, never importing back.
EXTENSIONS = {"arrayq_numpy._kernels"}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(name: str, path: pathlib.Path) -> set[str]:
    """The arrayq modules ``name`` imports anywhere in its body (functions included; imports
    under ``if TYPE_CHECKING:`` are for type checkers only and never run)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def target(module: str) -> str | None:
        while module and module not in MODULES:  # a name inside a module: the module
            module = module.rpartition(".")[0]
        return module or None

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(t for a in node.names if (t := target(a.name)))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                if f"{base}.{alias.name}" in EXTENSIONS:
                    continue
                t = target(f"{base}.{alias.name}") if f"{base}.{alias.name}" in MODULES else target(base)
                if t:
                    found.add(t)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text()))
    found.discard(name)
    return found


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _cycle() -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the path, 2: done
    path: list[str] = []

    def walk(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(GRAPH[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (found := walk(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(GRAPH):
        if node not in state and (found := walk(node)):
            return found
    return None


def test_the_graph_sees_function_level_imports():
    # the graph is built from the source: a function-level import is an edge like any other
    assert "arrayq._api" in GRAPH["arrayq.quant._fallback"]
    assert "arrayq.backend" in GRAPH["arrayq._registry"]  # imported inside functions only


def test_no_import_cycle():
    cycle = _cycle()
    assert cycle is None, " -> ".join(cycle)


def test_the_contract_only_declares():
    """Every method of the contract raises (a primitive) or returns NotImplemented (an
    optional native op): the defaults live in _composites.py."""
    tree = ast.parse((ROOT / "arrayq" / "backend" / "_contract.py").read_text())
    (contract,) = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Contract"]
    methods = [n for n in contract.body if isinstance(n, ast.FunctionDef)]
    assert len(methods) > 30
    for fn in methods:
        body = [s for s in fn.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
        assert len(body) == 1, fn.name
        (stmt,) = body
        raises = isinstance(stmt, ast.Raise)
        not_implemented = isinstance(stmt, ast.Return) and getattr(stmt.value, "id", None) == "NotImplemented"
        assert raises or not_implemented, fn.name


def test_the_quantized_argument_list_is_written_once():
    """The format triple travels inside a QuantizedWeight: no backend method spells out
    ``packed, scales, biases, ..., group_size, bits, mode``."""
    for name, path in MODULES.items():
        if name.startswith("arrayq.quant"):
            continue  # the format code itself, written against any namespace
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef):
                args = [a.arg for a in node.args.args]
                assert not {"packed", "scales", "group_size", "bits", "mode"} <= set(args), f"{name}.{node.name}"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_modules_stay_readable(name):
    lines = len(MODULES[name].read_text().splitlines())
    assert lines <= 550, f"{MODULES[name].relative_to(ROOT)}: {lines} lines; split it by what its parts do"


@pytest.mark.parametrize("backend", ["arrayq_numpy", "arrayq_mlx", "arrayq_jax", "arrayq_strict"])
def test_backends_import_only_public_names(backend):
    for name in MODULES:
        if not name.startswith(backend):
            continue
        for dep in GRAPH[name]:
            if dep.startswith("arrayq."):
                assert not any(part.startswith("_") for part in dep.split(".")[1:]), f"{name} imports {dep}"
