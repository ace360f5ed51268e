"""Label boxes over the image (the canvas's ``drawForeground``): ground truth solid, predictions
dashed, one cosmetic pixel wide, drawn so that a paint of part of the viewport (a pan scrolled in
place paints only the band it exposes) puts the same pixels there as a paint of all of it.

Qt's cosmetic stroker works against that in two places, both where a line is clipped at the paint
device's edge: it leaves out a rectangle's corner pixel after a clipped side, and it starts a dash
pattern again where it clips a line's start. So a box is four lines, and a dashed side that starts
outside the viewport is drawn from where it enters, its pattern offset by the pixels left out: its
dashes stay where they were as the view pans.
"""

from __future__ import annotations

import math

from PySide6.QtCore import QLineF
from PySide6.QtGui import QPainter, QTransform

from maskreview.gui.canvas import overlay as ov


def box_sides(inst: ov.Instance) -> list[QLineF]:
    """``inst``'s box as four lines (top, right, bottom, left, each from the corner before)."""
    x0, y0, x1, y1 = inst.x0, inst.y0, inst.x0 + inst.w, inst.y0 + inst.h
    return [QLineF(x0, y0, x1, y0), QLineF(x1, y0, x1, y1), QLineF(x1, y1, x0, y1), QLineF(x0, y1, x0, y0)]


def draw_boxes(painter: QPainter, insts: list, colors: list, view: QTransform, width: int, height: int, pen) -> None:
    """The boxes of ``insts`` in ``colors``, one ``drawLines`` per (colour, dashed) in one fixed
    order whatever is in view. ``view`` maps the scene to the ``width x height`` viewport (scale and
    translate: the painter's world transform); ``pen(rgb, dashed)`` is the pen of a group."""
    sx, dx, sy, dy = view.m11(), view.dx(), view.m22(), view.dy()
    groups: dict = {}
    crossing: dict = {}  # dashed boxes not wholly in view: their sides may start outside it
    for inst, rgb in zip(insts, colors):
        sides = inst.__dict__.get("_qsides")  # made once per instance, as its edge path
        if sides is None:
            sides = inst.__dict__["_qsides"] = box_sides(inst)
        dashed = ov.is_prediction(inst)
        if dashed and not (0 <= inst.x0 * sx + dx and (inst.x0 + inst.w) * sx + dx <= width
                           and 0 <= inst.y0 * sy + dy and (inst.y0 + inst.h) * sy + dy <= height):
            crossing.setdefault((rgb, dashed), []).extend(sides)
        else:
            groups.setdefault((rgb, dashed), []).extend(sides)
    for key in sorted(groups.keys() | crossing.keys()):
        rgb, dashed = key
        lines = groups.get(key, [])
        if key in crossing:
            lines = lines + _draw_entering(painter, crossing[key], view, width, height, lambda: pen(rgb, dashed))
        painter.setPen(pen(rgb, dashed))
        painter.drawLines(lines)


def _draw_entering(painter: QPainter, lines: list[QLineF], view: QTransform, width: int, height: int,
                   pen) -> list[QLineF]:
    """Draw those of the axis-aligned dashed ``lines`` that start outside the viewport from where
    they enter it (in viewport pixels), their pattern offset by the pixels left out; return the
    lines that start inside (or never enter). Lines whose offsets agree modulo the pattern's
    period share one pen and one ``drawLines`` (a dense view has hundreds of them)."""
    sx, dx, sy, dy = view.m11(), view.dx(), view.m22(), view.dy()
    inside, entering = [], {}
    for line in lines:
        x1, y1 = line.x1() * sx + dx, line.y1() * sy + dy
        if 0 <= x1 <= width and 0 <= y1 <= height:
            inside.append(line)
            continue
        x2, y2 = line.x2() * sx + dx, line.y2() * sy + dy
        ex, ey = min(max(x1, 0), width), min(max(y1, 0), height)  # where it enters, if it does
        if (x1 == x2 and 0 <= x1 <= width and min(y1, y2) <= ey <= max(y1, y2)) or \
                (y1 == y2 and 0 <= y1 <= height and min(x1, x2) <= ex <= max(x1, x2)):
            # the stroker steps the pattern a pixel at a time from the pixel floor(start) is in
            skipped = abs(math.floor(ex) - math.floor(x1)) + abs(math.floor(ey) - math.floor(y1))
            entering.setdefault(skipped, []).append(QLineF(ex, ey, x2, y2))
    if entering:
        painter.save()
        painter.resetTransform()
        base = pen()
        unit = max(base.widthF(), 1e-9)
        period = sum(base.dashPattern()) * unit  # device pixels after which the pattern repeats
        phases: dict = {}
        for skipped, group in entering.items():
            phases.setdefault(skipped % period if period > 0 else skipped, []).extend(group)
        for skipped, group in sorted(phases.items()):
            p = pen()
            p.setDashOffset(skipped / unit)  # in pen widths
            painter.setPen(p)
            painter.drawLines(group)
        painter.restore()
    return inside
