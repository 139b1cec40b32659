"""Trend charts, drawn by pygal as SVG: the same markup in the browser and in WeasyPrint's PDFs."""

import re

import pygal
from django.utils.html import escape

LINE_CSS = "inline:.graph .line{fill:none;stroke:#1f4e8c;stroke-width:1.5}.graph .background{fill:none}"
# pygal embeds the config of its tooltip script and credits as comments; pages and PDFs run no chart script.
NOISE = re.compile(r"<script.*?</script>|<!--.*?-->", re.S)


def sparkline(values: list[float | None], *, label: str = "trend", width: int = 90, height: int = 22) -> str:
    """A small trend line of one series, interrupted where a period has no figure; "" below two figures."""
    if sum(v is not None for v in values) < 2:
        return ""
    chart = pygal.Line(
        css=[LINE_CSS],
        no_prefix=True,
        js=[],
        disable_xml_declaration=True,
        show_dots=False,
        allow_interruptions=True,
        width=width,
        height=height,
    )
    chart.add("", values)
    svg = NOISE.sub("", chart.render_sparkline(width=width, height=height))
    return svg.replace("<title>Pygal</title>", f"<title>{escape(label)}</title>", 1)
