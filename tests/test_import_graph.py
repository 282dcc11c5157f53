"""keras_se's modules import each other without circles, deferred imports included.

An import inside a function that dodges a circle still couples two modules
both ways; the graph here counts every `import` and `from ... import` of a
keras_se module, at any depth of the source.
"""

import ast
import pathlib

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "keras_se"


def _module_name(path):
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path, modules):
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from keras_se.export import gpu_run` imports the submodule.
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        found |= {name for name in names if name in modules}
    return found


def _graph():
    paths = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    # A package's __init__ gathers its submodules (the public names): leave
    # those edges out, they point down by construction.
    return {
        name: {m for m in _imports(path, paths) if not (path.name == "__init__.py" and m.startswith(name + "."))}
        for name, path in paths.items()
    }


def _cycle(graph):
    state = {}

    def visit(node, stack):
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt) :] + [nxt] if nxt in stack else [node, nxt]
            if nxt not in state and (found := visit(nxt, stack + [nxt])):
                return found
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node, [node])):
            return found
    return None


def test_the_graph_sees_deferred_imports():
    graph = _graph()
    # keras_se.export.tflite imports verify at the top; cli imports calibration inside a function.
    assert "keras_se.export.verify" in graph["keras_se.export.tflite"]
    assert "keras_se.export.calibration" in graph["keras_se.export.cli"]


def test_no_import_circles_among_the_export_modules():
    graph = _graph()
    export = {
        name: {m for m in edges if m.startswith("keras_se.export.")} for name, edges in graph.items() if name.startswith("keras_se.export.")
    }
    assert _cycle(export) is None, f"import circle: {' -> '.join(_cycle(export))}"
