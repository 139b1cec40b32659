"""Imports between our apps only point down the layers (README, Architecture):

    deliverables  <  accounts  <  playbooks  <  engagements  <  crm_connectors  <  reporting  <  demo

A module may import its own app and the apps below it, never one above, not even inside a function or through a
dotted path in a string (`import_string("reporting.views_home.org_home")`, a task sent by name). The deliverables
layer imports none of ours: document kinds register themselves with it from the apps above.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ["deliverables", "accounts", "playbooks", "engagements", "crm_connectors", "reporting", "demo"]
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


def test_every_layer_has_modules_to_check():
    # A renamed or missing app would make the walk below vacuous.
    assert all(modules(app) for app in LAYERS), [app for app in LAYERS if not modules(app)]


def test_no_app_imports_an_app_above_it():
    problems = [problem for app in LAYERS for problem in upward_imports(app)]
    assert not problems, "Imports that point up the layers:\n" + "\n".join(problems)


def test_deliverables_imports_none_of_our_apps():
    ours = [
        f"{path.relative_to(ROOT)}:{line}: `{source}`"
        for path in modules("deliverables")
        for line, other, source in imported_apps(path)
        if other != "deliverables"
    ]
    assert not ours, "deliverables must import no other app of ours:\n" + "\n".join(ours)


def test_the_walk_sees_function_local_imports(tmp_path):
    """The checker itself: an import inside a function counts as much as one at the top of the file."""
    module = tmp_path / "sample.py"
    module.write_text("import os\n\ndef later():\n    from reporting.health import check_now\n    return check_now\n")
    assert imported_apps(module) == [(4, "reporting", "from reporting.health import check_now")]


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
