"""The one rendering path: a template rendered to HTML, then WeasyPrint to PDF."""

import gc

from celery.signals import worker_before_create_process
from django.conf import settings
from django.template.loader import get_template, render_to_string

from . import registry


def render_pdf(template: str, context: dict) -> tuple[bytes, int]:
    """Return the PDF bytes and its page count. Assets resolve from static/ on disk: never the network."""
    from weasyprint import HTML  # imported on first render: a worker that never renders stays ~45 MB smaller

    html = render_to_string(template, context)
    document = HTML(string=html, base_url=str(settings.BASE_DIR / "static")).render()
    return document.write_pdf(), len(document.pages)


_preloaded = False


@worker_before_create_process.connect
def preload_for_pool_children(**kwargs) -> None:
    """In a prefork worker's parent, before each pool child forks: load what every render needs once, here.

    Only a prefork pool sends this signal (the CRM queue's thread worker and `make run`'s solo worker never do, and
    stay without WeasyPrint). Children forked afterwards share these pages copy-on-write instead of each importing
    WeasyPrint, Pango and fontconfig and compiling the report templates on its first render; a child replaced
    after --max-memory-per-child then costs a fork, not a 2-second import. gc.freeze() moves everything loaded so
    far out of the collector's reach: a child's collections would otherwise write into every object's header and
    so copy each shared page (CPython's advice for prefork servers, see the gc module's documentation)."""
    global _preloaded
    if not _preloaded:
        from weasyprint import HTML

        for kind in registry.kinds():
            get_template(registry.get(kind).template)  # compiled into the cached template loader
        HTML(string="<p>warm-up</p>").render().write_pdf()  # Pango's and fontconfig's state, the fonts' files
        _preloaded = True
    gc.collect()
    gc.freeze()
