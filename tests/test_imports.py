"""The package's modules form no import cycle: none imports one that imports it back, directly or
through others, at the top or inside a function."""
import ast
from pathlib import Path

import medshield

ROOT = Path(medshield.__file__).parent


def module_graph() -> dict[str, set[str]]:
    files = {".".join(("medshield",) + f.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): f
             for f in ROOT.rglob("*.py")}
    graph = {}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = node.module if not node.level else ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1] + ([node.module] if node.module else []))
                targets |= {f"{base}.{a.name}" if f"{base}.{a.name}" in files else base for a in node.names}
            elif isinstance(node, ast.Import):
                targets |= {a.name for a in node.names}
        graph[name] = {t for t in targets if t in files and t != name}
    return graph


def test_no_import_cycles():
    graph = module_graph()
    assert len(graph) > 40  # the walk really saw the package

    def reaches(start, goal, seen):
        return any(n == goal or (n not in seen and reaches(n, goal, seen | {n})) for n in graph[start])

    cycles = sorted(name for name in graph if reaches(name, name, {name}))
    assert not cycles, f"modules on an import cycle: {cycles}"


# ARCHITECTURE.md's layers, bottom first: a module imports only from its own package and from
# lower layers; packages of one layer do not import each other.
LAYERS = [
    {"errors"},
    {"units", "_registry", "_runtime", "_distributed", "presets", "bounds"},
    {"data", "models"},
    {"release"},
    {"protect", "evaluate"},
    {"report"},
    {"run_plan"},
    {"pipeline", "options"},
    {"medshield"},  # the package's __init__: the public API (its __version__ is read by every layer)
    {"verbs"},  # what each command-line verb does
    {"cli"},
    {"__main__"},
]


def layer_of(module: str) -> int:
    part = module.split(".")[1] if "." in module else "medshield"
    return next(i for i, layer in enumerate(LAYERS) if part in layer)


def test_nothing_imports_upwards_or_sideways():
    graph = module_graph()
    wrong = sorted(f"{source} -> {target}" for source, targets in graph.items() for target in targets
                   if source.split(".")[:2] != target.split(".")[:2] and target != "medshield"
                   and layer_of(target) >= layer_of(source))
    assert not wrong, f"imports against ARCHITECTURE.md's layers: {wrong}"


def test_the_public_names_resolve_and_import_medshield_stays_light():
    """Every name ``medshield`` exports (what the benchmarks script with) resolves; importing the package
    alone loads no torch (the command line starts light)."""
    import subprocess
    import sys

    assert all(getattr(medshield, name) is not None for name in medshield.__all__)
    code = "import sys, medshield; assert 'torch' not in sys.modules, 'import medshield loaded torch'"
    subprocess.run([sys.executable, "-c", code], check=True)
