"""The served templates hold no inline code, so the Content-Security-Policy can refuse all of it.

Inline <script> bodies, <style> blocks, style= attributes, on*= handlers, htmx's hx-on (run through eval), `js:`
values and hx-trigger filters (`[...]`, also eval) would each be blocked by the policy and break the page silently.
Behaviour lives in static/js, styles in static/css. The PDF templates (templates/reports) and the email templates
are not served under the policy and keep their inline styles (see CONTENT_SECURITY_POLICY in settings).
"""

import re
from pathlib import Path

import pytest

from .conftest import ROOT

TEMPLATES = ROOT / "templates"
NOT_SERVED = {"reports", "emails"}

INLINE_CODE = {
    "inline <script> (use a static/js module)": re.compile(r"<script\b(?![^>]*\bsrc=)[^>]*>", re.I),
    "<style> block (use static/css)": re.compile(r"<style\b", re.I),
    "style= attribute (use a class in static/css)": re.compile(r"\sstyle\s*=", re.I),
    "on*= event handler (use a data- attribute and a listener in static/js)": re.compile(r"\son[a-z]+\s*=", re.I),
    "hx-on attribute (eval; listen for the htmx: event in static/js)": re.compile(r"\s(data-)?hx-on", re.I),
    "javascript: or js: value (runs through eval)": re.compile(r"""["'](javascript|js):""", re.I),
    "hx-trigger filter [...] (runs through eval)": re.compile(r"""hx-trigger\s*=\s*["'][^"']*\[""", re.I),
    "hx-vars (runs through eval; use hx-vals with JSON)": re.compile(r"\shx-vars\s*=", re.I),
}


def served_templates() -> list[Path]:
    return sorted(p for p in TEMPLATES.rglob("*.html") if p.relative_to(TEMPLATES).parts[0] not in NOT_SERVED)


# Template comments are not served: blanked out (newlines kept, so lines and columns stay true) before the scan.
COMMENT = re.compile(r"\{#.*?#\}|\{% comment %\}.*?\{% endcomment %\}", re.S)


def inline_code(text: str) -> list[tuple[int, int, str]]:
    """(line, column, what) of every piece of inline code in a template's text."""
    text = COMMENT.sub(lambda m: re.sub(r"[^\n]", " ", m.group()), text)
    found = []
    for what, pattern in INLINE_CODE.items():
        for match in pattern.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            column = match.start() - (text.rfind("\n", 0, match.start()) + 1) + 1
            found.append((line, column, what))
    return sorted(found)


def test_no_served_template_holds_inline_code():
    templates = served_templates()
    assert len(templates) > 50  # the scan saw the templates, not an empty folder
    problems = [
        f"{path.relative_to(ROOT)}:{line}:{column}: {what}"
        for path in templates
        for line, column, what in inline_code(path.read_text())
    ]
    assert not problems, "Inline code the CSP would block:\n" + "\n".join(problems)


@pytest.mark.parametrize(
    ("snippet", "what"),
    [
        ("<script>alert(1)</script>", "inline <script>"),
        ('<script type="module">\nx()</script>', "inline <script>"),
        ("<style>p { color: red }</style>", "<style> block"),
        ('<p class="x" style="margin:0">', "style= attribute"),
        ('<select onchange="this.form.submit()">', "on*= event handler"),
        ('<div hx-on::after-swap="go()">', "hx-on attribute"),
        ('<div data-hx-on:click="go()">', "hx-on attribute"),
        ('<a href="javascript:go()">', "javascript: or js: value"),
        ("<div hx-vals='js:{a: b()}'>", "javascript: or js: value"),
        ("<input hx-trigger=\"keyup[key=='Enter']\">", "hx-trigger filter"),
        ('<div hx-vars="a:b()">', "hx-vars"),
    ],
)
def test_the_scan_finds_each_kind_of_inline_code(snippet, what):
    found = inline_code(f"<div>\n  {snippet}\n</div>")
    assert [w for _, _, w in found if w.startswith(what)], found
    assert found[0][0] == 2  # reported on its line


def test_the_scan_passes_what_the_policy_allows():
    allowed = """<script src="/static/js/app.js" defer></script>
<div id="dialog-slot" data-dialog-slot class="gap-above" hx-trigger="change, input delay:700ms"
     hx-vals='{"item": "k"}' data-confirm="Publish?">Sign on to the portal; style guide</div>"""
    assert inline_code(allowed) == []
    assert inline_code("{# no hx-on, no <style> #}{% comment %}<script>x()</script>{% endcomment %}") == []
