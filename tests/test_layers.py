"""Imports between our apps only point down the layers (README, Architecture):

    deliverables < accounts < playbooks < engagements < client_workspace < crm_connectors < reporting < demo

A module may import its own app and the apps below it, never one above, not even inside a function or through a
dotted path in a string (`import_string("reporting.views_home.org_home")`, a task sent by name). The deliverables
layer imports none of ours: document kinds register themselves with it from the apps above. A template loads tag
libraries of its own app and those below it only (`{% load %}` is an import that runs at render time).
"""

import ast
import re
import sys
from pathlib import Path

from django.template import engines

ROOT = Path(__file__).resolve().parents[1]
LAYERS = [
    "deliverables", "accounts", "playbooks", "engagements", "client_workspace", "crm_connectors", "engineering",
    "reporting", "demo",
]
RANK = {app: i for i, app in enumerate(LAYERS)}


def modules(app: str) -> list[Path]:
    return sorted(p for p in (ROOT / app).rglob("*.py") if ".venv" not in p.parts)


def names_a_module(dotted: str) -> bool:
    """Whether a string is a dotted path into one of our modules ("reporting.views_home.org_home"), rather than a
    model label ("engagements.Engagement") or a salt that happens to start with an app's name."""
    parts = dotted.split(".")
    return all(part.isidentifier() for part in parts) and any(
        ROOT.joinpath(*parts[:n]).with_suffix(".py").is_file() or (ROOT.joinpath(*parts[:n]) / "__init__.py").is_file()
        for n in range(2, len(parts) + 1)
    )


def imported_apps(path: Path) -> list[tuple[int, str, str]]:
    """(line, app, the import as written) for every import of one of our apps in the file, at any depth, and for
    every string that names one of our modules by its dotted path (an import the interpreter only makes later)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and names_a_module(node.value):
            names = [node.value]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue  # relative imports stay inside the app
        for name in names:
            top = name.split(".")[0]
            if top in RANK:
                found.append((node.lineno, top, ast.unparse(node)))
    return found


def upward_imports(app: str) -> list[str]:
    return [
        f"{path.relative_to(ROOT)}:{line}: `{source}` ({app} imports {other}, a layer above it)"
        for path in modules(app)
        for line, other, source in imported_apps(path)
        if RANK[other] > RANK[app]
    ]


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def run_on_import(body: list[ast.stmt]):
    """The statements Python runs when it imports the module: not function bodies, not `if TYPE_CHECKING:`."""
    for node in body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
            yield from run_on_import(node.orelse)
            continue
        yield node
        for field in ("body", "orelse", "finalbody", "handlers"):
            yield from run_on_import(getattr(node, field, []))


def imported_at_module_level(path: Path, known: set[str]) -> set[str]:
    """The modules of `known` that `path` imports as it is imported itself."""
    here = module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    found = set()
    for node in run_on_import(ast.parse(path.read_text(), filename=str(path)).body):
        if isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1]) if node.level else ""
            module = ".".join(part for part in (base, node.module) if part)
            candidates = [f"{module}.{alias.name}" for alias in node.names] + [module]
        else:
            continue
        for name in candidates:
            while name and name not in known:  # `import a.b.c` imports a.b.c, or the nearest package of ours
                name = name.rpartition(".")[0]
            if name and name != here:
                found.add(name)
    return found


def mutual_imports(app: str) -> list[str]:
    paths = {module_name(path): path for path in modules(app)}
    imports = {name: imported_at_module_level(path, set(paths)) for name, path in paths.items()}
    return [f"{a} <-> {b}" for a in sorted(imports) for b in sorted(imports[a]) if a < b and a in imports[b]]


# Template folders named for no app whose pages one app renders: the portal's pages are engagements' views'. Other
# folders (reports/, emails/, includes/) are shared: each app that renders them brings its own.
TEMPLATE_FOLDERS = {"portal": "engagements"}
LOAD = re.compile(r"{%\s*load\s+(.+?)\s*%}")


def loaded_libraries(text: str) -> list[str]:
    """The tag libraries a template loads: `{% load a b %}` loads a and b, `{% load tag from lib %}` loads lib."""
    names = []
    for match in LOAD.finditer(text):
        words = match.group(1).split()
        names += [words[-1]] if "from" in words else words
    return names


def upward_template_loads() -> list[str]:
    library_apps = {name: module.split(".")[0] for name, module in engines["django"].engine.libraries.items()}
    problems = []
    for path in sorted((ROOT / "templates").rglob("*.html")):
        folder = path.relative_to(ROOT / "templates").parts[0]
        app = TEMPLATE_FOLDERS.get(folder, folder)
        if app not in RANK:
            continue
        for library in loaded_libraries(path.read_text()):
            other = library_apps.get(library)
            if other in RANK and RANK[other] > RANK[app]:
                problems.append(f"{path.relative_to(ROOT)}: {{% load {library} %}} ({app} loads tags of {other})")
    return problems


def test_every_layer_has_modules_to_check():
    # A renamed or missing app would make the walk below vacuous.
    assert all(modules(app) for app in LAYERS), [app for app in LAYERS if not modules(app)]


def test_no_app_imports_an_app_above_it():
    problems = [problem for app in LAYERS for problem in upward_imports(app)]
    assert not problems, "Imports that point up the layers:\n" + "\n".join(problems)


def test_no_template_loads_tags_of_an_app_above_it():
    problems = upward_template_loads()
    assert not problems, "Templates that load tags from a layer above:\n" + "\n".join(problems)


def test_the_template_walk_knows_our_libraries_and_reads_every_load():
    """The checker itself: each of our tag libraries is named for the app it lives in, and `{% load x from y %}`
    counts as loading y."""
    libraries = engines["django"].engine.libraries
    assert libraries["client_workspace"].startswith("client_workspace.") and libraries["panels"].startswith(
        "engagements."
    )
    assert loaded_libraries("{% load partials panels %}{% load  get_cell from client_workspace %}") == [
        "partials",
        "panels",
        "client_workspace",
    ]


def test_deliverables_imports_none_of_our_apps():
    ours = [
        f"{path.relative_to(ROOT)}:{line}: `{source}`"
        for path in modules("deliverables")
        for line, other, source in imported_apps(path)
        if other != "deliverables"
    ]
    assert not ours, "deliverables must import no other app of ours:\n" + "\n".join(ours)


def test_no_two_modules_of_an_app_import_each_other_at_module_level():
    """A services module that enqueues a task imports the task module inside the function that enqueues (on
    commit); the task module imports services at its top. Both at the top would be a cycle that only import order
    keeps working."""
    problems = [f"{app}: {pair}" for app in LAYERS for pair in mutual_imports(app)]
    assert not problems, "Modules that import each other as they load:\n" + "\n".join(problems)


def test_the_walk_sees_function_local_imports(tmp_path):
    """The checker itself: an import inside a function counts as much as one at the top of the file."""
    module = tmp_path / "sample.py"
    module.write_text("import os\n\ndef later():\n    from reporting.runs import check_now\n    return check_now\n")
    assert imported_apps(module) == [(4, "reporting", "from reporting.runs import check_now")]


def test_the_walk_sees_dotted_paths_in_strings(tmp_path):
    """The checker itself: a view reached through import_string is an import; a model label or a salt is not."""
    module = tmp_path / "sample.py"
    module.write_text(
        "from django.utils.module_loading import import_string\n\n"
        "def home(request):\n"
        "    return import_string('reporting.views_home.org_home')(request)\n\n"
        "OWNER = 'engagements.Engagement'\n"
        "SALT = 'reporting.unsubscribe'\n"
    )
    assert imported_apps(module) == [(4, "reporting", "'reporting.views_home.org_home'")]


def test_the_module_level_walk_sees_package_and_relative_imports(tmp_path, monkeypatch):
    """The checker itself: `from . import tasks`, `from .tasks import x` and `import app.tasks` all count; a
    function-local import and one only for the type checker do not."""
    app = tmp_path / "shop"
    app.mkdir()
    (app / "__init__.py").write_text("")
    (app / "tasks.py").write_text("from . import services\n")
    (app / "services.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from .views import page\n"
        "try:\n    from shop.tasks import send\nexcept ImportError:\n    pass\n"
        "def later():\n    from .views import page\n"
    )
    (app / "views.py").write_text("import shop.services\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert mutual_imports("shop") == ["shop.services <-> shop.tasks"]
