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


def _architecture_layers():
    """README's Architecture list, top first: each entry's modules (a folder or a file)."""
    text = (PACKAGE.parent / "README.md").read_text(encoding="utf-8")
    section = text.split("## Architecture", 1)[1].split("Where things go", 1)[0]
    layers = []
    for line in section.splitlines():
        if line.startswith("- `"):
            layers.append(line[3:].split("`", 1)[0].removeprefix("keras_se/").removesuffix(".py").rstrip("/"))
    return layers


def _layer_of(module, layers):
    parts = module.split(".")[1:]
    if parts and parts[-1] == "cli":
        return 0  # the command line, `cli.py` and `*/cli.py`, is the top
    return layers.index(parts[0]) if parts and parts[0] in layers else None


def test_dependencies_point_down_as_the_readme_says():
    layers = _architecture_layers()
    assert layers[:2] == ["cli", "training"] and layers[-2:] == ["models", "layers"], layers
    wrong = []
    for module, edges in _graph().items():
        mine = _layer_of(module, layers)
        for imported in edges:
            theirs = _layer_of(imported, layers)
            if mine is not None and theirs is not None and theirs < mine:
                wrong.append(f"{module} imports {imported}")
    assert wrong == [], wrong


def test_the_layer_rule_would_see_a_model_module_importing_weights():
    layers = _architecture_layers()
    assert _layer_of("keras_se.weights.timm", layers) < _layer_of("keras_se.models.resnet", layers)
    assert _layer_of("keras_se.export.cli", layers) == 0
