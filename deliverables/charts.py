"""Trend charts, drawn by pygal as SVG: the same markup in the browser and in WeasyPrint's PDFs.

pygal paints its charts with an embedded stylesheet whose first rule has no selector once `no_prefix` drops the
chart id. WeasyPrint rejects that stylesheet, so every shape fell back to SVG's default paint, solid black, and
each chart printed as a black box. The markup is therefore rewritten with presentation attributes on each shape
(fill, stroke), which every SVG renderer honours, and without the stylesheet, scripts and tooltip layers.
"""

import re
import xml.etree.ElementTree as ET

import pygal

SVG = "http://www.w3.org/2000/svg"
LINE = "#1f4e8c"
# Paint by pygal's class names; any other shape is left unfilled (SVG's default fill is black).
PAINT = {
    "line": {"fill": "none", "stroke": LINE, "stroke-width": "1.5", "stroke-linejoin": "round"},
    "background": {"fill": "none"},
    "latest": {"fill": LINE, "stroke": "none"},
}
DROPPED = {"tooltip-overlay", "text-overlay", "overlay", "titles"}  # interactive or empty layers
SHAPES = {f"{{{SVG}}}{tag}" for tag in ("rect", "path", "circle", "polygon", "polyline", "ellipse")}
POINT = re.compile(r"(-?[\d.]+)[ ,](-?[\d.]+)\s*$")


def _classes(element: ET.Element) -> set[str]:
    return set(element.get("class", "").split())


def _paint(root: ET.Element) -> None:
    """Presentation attributes instead of pygal's stylesheet; interactive layers removed."""
    for parent in list(root.iter()):
        for child in list(parent):
            if child.tag in (f"{{{SVG}}}defs", f"{{{SVG}}}script") or _classes(child) & DROPPED:
                parent.remove(child)
    for element in root.iter():
        if element.tag in SHAPES:
            classes = _classes(element)
            paint = next((PAINT[c] for c in PAINT if c in classes), {"fill": "none"})
            for name, value in paint.items():
                element.set(name, value)
        if element is not root:  # the chart keeps its own classes (pygal-chart pygal-sparkline) for pages' CSS
            element.attrib.pop("class", None)
    root.attrib.pop("id", None)


def _mark_latest(root: ET.Element) -> None:
    """A dot on the latest figure, so a reader sees which end of the line is this month."""
    lines = [e for e in root.iter(f"{{{SVG}}}path") if "line" in _classes(e)]
    if not lines:
        return
    found = POINT.search(lines[-1].get("d", ""))
    if found is None:
        return
    parent = next(p for p in root.iter() if lines[-1] in list(p))
    ET.SubElement(parent, f"{{{SVG}}}circle", {"cx": found[1], "cy": found[2], "r": "2", "class": "latest"})


def sparkline(values: list[float | None], *, label: str = "trend", width: int = 90, height: int = 22) -> str:
    """A small trend line of one series, interrupted where a period has no figure; "" below two figures."""
    if sum(v is not None for v in values) < 2:
        return ""
    chart = pygal.Line(
        no_prefix=True,
        js=[],
        disable_xml_declaration=True,
        show_dots=False,
        allow_interruptions=True,
        width=width,
        height=height,
    )
    chart.add("", values)
    root = ET.fromstring(chart.render_sparkline(width=width, height=height))  # noqa: S314 - pygal's own markup of numbers
    if values[-1] is not None:
        _mark_latest(root)
    _paint(root)
    title = root.find(f"{{{SVG}}}title")
    if title is None:
        title = ET.Element(f"{{{SVG}}}title")
        root.insert(0, title)
    title.text = label
    root.set("role", "img")
    # Plain tag names under one xmlns attribute: ElementTree would otherwise write whatever prefix was last
    # registered for the namespace (`<ns0:svg>`), which HTML parsers, WeasyPrint's included, do not draw.
    for element in root.iter():
        element.tag = element.tag.rpartition("}")[2]
    root.set("xmlns", SVG)
    return ET.tostring(root, encoding="unicode")
