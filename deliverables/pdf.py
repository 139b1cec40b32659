"""The one rendering path: a template rendered to HTML, then WeasyPrint to PDF."""

from django.conf import settings
from django.template.loader import render_to_string


def render_pdf(template: str, context: dict) -> tuple[bytes, int]:
    """Return the PDF bytes and its page count. Assets resolve from static/ on disk: never the network."""
    from weasyprint import HTML  # imported on first render: a worker that never renders stays ~45 MB smaller

    html = render_to_string(template, context)
    document = HTML(string=html, base_url=str(settings.BASE_DIR / "static")).render()
    return document.write_pdf(), len(document.pages)
