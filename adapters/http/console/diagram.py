"""A lifecycle's state diagram as SVG, laid out on the server by grandalf (pure Python).

States are boxes (final states with a double border, the current one filled), transitions
arrows labelled with their trigger's title; a transition from a state to itself is a small
loop. grandalf's Sugiyama layout puts the states in layers (cycles are broken by reversing
feedback edges); no Graphviz is needed.
"""

from __future__ import annotations

from html import escape
from typing import Any

from grandalf.graphs import Edge, Graph, Vertex
from grandalf.layouts import SugiyamaLayout

from adapters.http.console.i18n import title

__all__ = ["state_diagram_svg"]

_CHAR_W = 13.0  # px per character (CJK glyphs are about a full em at 13 px)
_BOX_H = 34.0
_PAD = 24.0


class _View:
    def __init__(self, w: float, h: float):
        self.w = w
        self.h = h
        self.xy: tuple[float, float] = (0.0, 0.0)


class _EdgeView:
    def __init__(self) -> None:
        self.points: list[tuple[float, float]] = []

    def setpath(self, pts: list[tuple[float, float]]) -> None:
        self.points = [(float(x), float(y)) for x, y in pts]


def _width(text: str) -> float:
    wide = sum(1 for ch in text if ord(ch) > 0x2E80)
    return max(70.0, (wide * _CHAR_W + (len(text) - wide) * _CHAR_W * 0.6) + 24)


def state_diagram_svg(lc: Any, current: str | None, lang: str) -> str:
    """The SVG text of compiled lifecycle ``lc``'s states and transitions.

    Args:
        lc: a compiled lifecycle (``Engine.lifecycle``).
        current: the state to mark (``class="current"``, ``aria-current``), or None.
        lang: ``zh`` or ``en`` for state and trigger titles.
    """
    spec = lc.spec
    labels = {n: title(s.title, lang, n) for n, s in spec.states.items()}
    vertices = {n: Vertex(n) for n in spec.states}
    for n, v in vertices.items():
        v.view = _View(_width(labels[n]), _BOX_H)
    pairs: dict[tuple[str, str], list[str]] = {}
    loops: dict[str, list[str]] = {}
    for t in spec.transitions:
        name = title(t.title, lang, t.trigger)
        for src in t.source:
            if src == t.dest:
                loops.setdefault(src, []).append(name)
            else:
                names = pairs.setdefault((src, t.dest), [])
                if name not in names:
                    names.append(name)
    edges = []
    for (a, b) in pairs:
        e = Edge(vertices[a], vertices[b])
        e.view = _EdgeView()
        edges.append(e)
    graph = Graph(list(vertices.values()), edges)
    offset = 0.0
    for comp in graph.C:  # one component per lifecycle normally; others go to the right
        layout = SugiyamaLayout(comp)
        layout.xspace, layout.yspace = 30, 60
        initial = [v for v in comp.sV if v.data == spec.initial]
        layout.init_all(roots=initial or None)
        layout.draw(3)  # sets every vertex's view.xy and every edge's path (with bends)
        left = min(v.view.xy[0] - v.view.w / 2 for v in comp.sV)
        shift = offset - left
        for v in comp.sV:
            v.view.xy = (v.view.xy[0] + shift, v.view.xy[1])
        for e in comp.sE:
            e.view.points = [(x + shift, y) for x, y in e.view.points]
        offset = max(v.view.xy[0] + v.view.w / 2 for v in comp.sV) + 60
    boxes = {n: v.view for n, v in vertices.items()}
    bends = [p for e in edges for p in e.view.points]
    min_x = min([b.xy[0] - b.w / 2 for b in boxes.values()] + [x for x, _ in bends]) - _PAD
    min_y = min([b.xy[1] - b.h / 2 for b in boxes.values()] + [y for _, y in bends]) - _PAD
    max_x = max([b.xy[0] + b.w / 2 for b in boxes.values()] + [x + 90 for x, _ in bends]
                ) + _PAD + 60
    max_y = max([b.xy[1] + b.h / 2 for b in boxes.values()] + [y for _, y in bends]) + _PAD
    width, height = max_x - min_x, max_y - min_y

    def pt(x: float, y: float) -> str:
        return f"{x - min_x:.1f},{y - min_y:.1f}"

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="state-diagram" role="img" '
           f'viewBox="0 0 {width:.0f} {height:.0f}" width="{width:.0f}" '
           f'aria-label="{escape(title(spec.title, lang, spec.name))}">',
           '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
           'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
           'class="arrowhead"/></marker></defs>']
    for e in edges:
        a, b = e.v[0].data, e.v[1].data
        points = e.view.points or [vertices[a].view.xy, vertices[b].view.xy]
        points = _clip(points, boxes[a], boxes[b])
        path = " ".join(pt(x, y) for x, y in points)
        label = " / ".join(pairs[(a, b)])
        mx, my = points[len(points) // 2 - 1] if len(points) > 2 else (
            (points[0][0] + points[-1][0]) / 2, (points[0][1] + points[-1][1]) / 2)
        out.append(f'<g class="edge" data-from="{escape(a)}" data-to="{escape(b)}">'
                   f'<polyline points="{path}" marker-end="url(#arrow)"/>'
                   f'<text x="{mx - min_x + 4:.1f}" y="{my - min_y:.1f}">'
                   f'{escape(label)}</text></g>')
    for n, box in boxes.items():
        x, y = box.xy
        s = spec.states[n]
        cls = ["state"]
        if n == current:
            cls.append("current")
        if s.final:
            cls.append("final")
        aria = ' aria-current="true"' if n == current else ""
        out.append(f'<g class="{" ".join(cls)}" data-state="{escape(n)}"{aria}>'
                   f'<rect x="{x - box.w / 2 - min_x:.1f}" y="{y - box.h / 2 - min_y:.1f}" '
                   f'width="{box.w:.1f}" height="{box.h:.1f}" rx="8"/>')
        if s.final:
            out.append(f'<rect class="inner" x="{x - box.w / 2 - min_x + 3:.1f}" '
                       f'y="{y - box.h / 2 - min_y + 3:.1f}" width="{box.w - 6:.1f}" '
                       f'height="{box.h - 6:.1f}" rx="6"/>')
        out.append(f'<text x="{x - min_x:.1f}" y="{y - min_y + 5:.1f}" '
                   f'text-anchor="middle">{escape(labels[n])}</text>')
        if n in loops:
            rx = x + box.w / 2 - min_x
            ry = y - min_y
            out.append(f'<path class="loop" d="M{rx:.1f},{ry - 8:.1f} c 30,-18 30,34 0,16" '
                       f'marker-end="url(#arrow)"/><text class="loop-label" '
                       f'x="{rx + 26:.1f}" y="{ry + 4:.1f}">{escape(" / ".join(loops[n]))}'
                       f'</text>')
        out.append("</g>")
    out.append("</svg>")
    return "".join(out)


def _clip(points: list[tuple[float, float]], a: _View, b: _View
          ) -> list[tuple[float, float]]:
    """Move the first and last points from the box centres to their borders."""
    if len(points) < 2:
        return points
    return [_border(a, points[1]), *points[1:-1], _border(b, points[-2])]


def _border(box: _View, toward: tuple[float, float]) -> tuple[float, float]:
    cx, cy = box.xy
    dx, dy = toward[0] - cx, toward[1] - cy
    if dx == 0 and dy == 0:
        return cx, cy
    sx = (box.w / 2) / abs(dx) if dx else float("inf")
    sy = (box.h / 2) / abs(dy) if dy else float("inf")
    s = min(sx, sy)
    return cx + dx * s, cy + dy * s
