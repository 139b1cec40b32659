"""Trend charts: a small inline SVG line per series, the same markup in the browser and in WeasyPrint's PDFs.

Built by hand rather than by a charting library: a month-end renders a report (and the pages) with one trend per
figure, and pygal spent about 25 ms a chart building markup that then had to be stripped of its stylesheet,
scripts and tooltip layers (WeasyPrint painted its CSS-styled shapes solid black). A polyline per stretch of
consecutive figures, painted with presentation attributes every SVG renderer honours, is all a trend needs.
"""

from html import escape

LINE = "#1f4e8c"
PAD = 2.0  # keeps the line's stroke and the latest-figure dot inside the box


def _stretches(points: list[tuple[float, float] | None]) -> list[list[tuple[float, float]]]:
    """Runs of consecutive points: a month without a figure interrupts the line instead of bridging it."""
    runs: list[list[tuple[float, float]]] = [[]]
    for point in points:
        if point is None:
            if runs[-1]:
                runs.append([])
        else:
            runs[-1].append(point)
    return [r for r in runs if r]


def sparkline(values: list[float | None], *, label: str = "trend", width: int = 90, height: int = 22) -> str:
    """A small trend line of one series, interrupted where a period has no figure; "" below two figures."""
    figures = [v for v in values if v is not None]
    if len(figures) < 2:
        return ""
    low, high = min(figures), max(figures)
    span = high - low
    step = (width - 2 * PAD) / (len(values) - 1)

    def y(value: float) -> float:
        if span == 0:  # a flat series sits mid-height rather than on an edge
            return height / 2
        return PAD + (high - value) / span * (height - 2 * PAD)

    points = [None if v is None else (PAD + i * step, y(v)) for i, v in enumerate(values)]
    shapes = []
    for run in _stretches(points):
        if len(run) == 1:  # a figure alone between gaps: a dot, since a one-point line draws nothing
            shapes.append(f'<circle cx="{run[0][0]:.1f}" cy="{run[0][1]:.1f}" r="1" fill="{LINE}"/>')
        else:
            coords = " ".join(f"{x:.1f},{y_:.1f}" for x, y_ in run)
            shapes.append(
                f'<polyline points="{coords}" fill="none" stroke="{LINE}" stroke-width="1.5" stroke-linejoin="round"/>'
            )
    if points[-1] is not None:  # a dot on the latest figure, so a reader sees which end is this month
        shapes.append(f'<circle cx="{points[-1][0]:.1f}" cy="{points[-1][1]:.1f}" r="2" fill="{LINE}"/>')
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="sparkline" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}"><title>{escape(label)}</title>{"".join(shapes)}</svg>'
    )
