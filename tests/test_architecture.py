"""The house rules hold: layers import only downward, no import cycles, no oversized module,
and no product module that only tests and benches use.

The import graph comes from grimp (the graph library behind import-linter), which reads the
source statically; imports under ``TYPE_CHECKING`` are left out, as they never run.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parent.parent
#: Highest first: each may import only the ones after it (marketdata <- portfolio <- realtime
#: <- clera).
LAYERS = ("clera", "realtime", "portfolio", "marketdata")
#: The development launchers: they may use anything, and no product module may use them.
DEVSTACK = "clera.devstack"
MAX_LINES = 600
#: Modules Django, Celery and manage.py load by convention rather than by an import.
_LOADED_BY_NAME = re.compile(
    r"(^|\.)(apps|admin|models|tasks|migrations|management|commands)(\.|$)|^[a-z]+$"
)


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph(*LAYERS, exclude_type_checking_imports=True)


def test_layers_import_only_downward(graph: grimp.ImportGraph) -> None:
    illegal = graph.find_illegal_dependencies_for_layers(layers=LAYERS)
    routes = sorted(
        " -> ".join(graph.find_shortest_chain(d.importer, d.imported) or (d.importer, d.imported))
        for d in illegal
    )
    assert not routes, f"imports from a higher layer into a lower one: {routes}"


def _imported(graph: grimp.ImportGraph, module: str) -> Iterator[str]:
    return iter(sorted(graph.find_modules_directly_imported_by(module)))


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups = []
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, _imported(graph, root))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            module, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, _imported(graph, child)))
                elif child in on_stack:
                    low[module] = min(low[module], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[module])
            if low[module] == index[module]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == module:
                        break
                if len(group) > 1:
                    groups.append(sorted(group))
    return groups


def test_no_import_cycles(graph: grimp.ImportGraph) -> None:
    assert _cycles(graph) == []


def test_cycle_finder_sees_a_cycle() -> None:
    tiny = grimp.ImportGraph()
    for importer, imported in (("a.one", "a.two"), ("a.two", "a.three"), ("a.three", "a.one")):
        tiny.add_import(importer=importer, imported=imported)
    tiny.add_import(importer="a.three", imported="a.four")
    assert _cycles(tiny) == [["a.one", "a.three", "a.two"]]


def test_no_product_module_over_the_size_limit() -> None:
    too_long = {
        str(path.relative_to(ROOT)): lines
        for path in ROOT.glob("*/**/*.py")
        if path.relative_to(ROOT).parts[0] in LAYERS
        and (lines := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert too_long == {}


#: Files that name modules for a framework to load (settings, URL includes, entry points).
_ENTRY_FILES = (
    "clera/settings.py", "clera/urls.py", "clera/asgi.py", "clera/wsgi.py", "manage.py",
    "celery_app.py",
)  # fmt: skip


def _loaded_by_name(graph: grimp.ImportGraph, module: str) -> bool:
    """Whether a framework loads the module without an import: by convention (apps, admin,
    models, tasks, migrations, commands), by a dotted name in an entry file, or as a package."""
    if _LOADED_BY_NAME.search(module) or graph.find_children(module):
        return True
    text = "".join((ROOT / name).read_text() for name in _ENTRY_FILES)
    return f'"{module}"' in text or f'"{module}.' in text


def test_no_product_module_only_tests_or_benches_use(graph: grimp.ImportGraph) -> None:
    product = {m for m in graph.modules if not m.startswith(DEVSTACK)}
    unused = sorted(
        module
        for module in product
        if not graph.find_modules_that_directly_import(module) & product
        and not _loaded_by_name(graph, module)
    )
    assert unused == []


def test_no_product_module_imports_the_dev_launchers(graph: grimp.ImportGraph) -> None:
    launchers = {m for m in graph.modules if m.startswith(DEVSTACK)}
    importers = {
        importer
        for launcher in launchers
        for importer in graph.find_modules_that_directly_import(launcher)
        if not importer.startswith(DEVSTACK)
    }
    assert importers == set()
