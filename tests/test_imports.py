"""``import gaussmix`` stays light: heavy optional libraries load only when used."""

from __future__ import annotations

import subprocess
import sys


def test_import_loads_no_torch_dask_matplotlib_or_onnx():
    code = (
        "import sys, gaussmix; "
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'dask', 'distributed', 'matplotlib', 'onnx', 'onnxruntime', 'skl2onnx'}); "
        "print(','.join(heavy))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


def _module_graph() -> dict[str, set[str]]:
    """gaussmix's modules and the gaussmix modules each imports at module level.

    Imports inside functions (done late on purpose) and under ``TYPE_CHECKING``
    are not edges; ``from . import x`` is an edge to the module ``x``, not to
    the package.
    """
    import ast
    from pathlib import Path

    import gaussmix

    root = Path(gaussmix.__file__).parent
    modules = {}
    for path in root.rglob("*.py"):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    graph = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ImportFrom):
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)] if node.level else []
                target = ".".join(base + ([node.module] if node.module else []))
                submodules = [f"{target}.{alias.name}" for alias in node.names if f"{target}.{alias.name}" in modules]
                targets = submodules + ([target] if len(submodules) < len(node.names) else [])
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                continue
            graph[name].update(target for target in targets if target in modules and target != name)
    return graph


def test_no_import_cycles():
    graph = _module_graph()
    assert "gaussmix.em" in graph and "gaussmix.covariance" in graph["gaussmix.em"]
    visiting, done, cycles = [], set(), []

    def visit(name: str) -> None:
        visiting.append(name)
        for target in sorted(graph[name]):
            if target in visiting:
                cycles.append(visiting[visiting.index(target):] + [target])
            elif target not in done:
                visit(target)
        visiting.pop()
        done.add(name)

    for name in sorted(graph):
        if name not in done:
            visit(name)
    assert cycles == [], "import cycles: " + "; ".join(" -> ".join(cycle) for cycle in cycles)
