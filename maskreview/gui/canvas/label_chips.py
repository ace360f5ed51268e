"""Instance labels as pre-rendered chips: a translucent box in the instance colour with its text.

Laying out text is the slow part of drawing 100 labels a frame, so each chip is rendered once
per (text, colour) and then drawn as a pixmap. The class name and the score are separate chips
(``"person"`` and ``" 0.87"``), and each label tag is a chip of its own (``#fix``), so the cache stays small (classes x colours + 101 scores per
colour) however many samples a session shows. A label's chips are then composed into one pixmap
per (class, score, tags, colour): one ``drawPixmap`` per label a frame (dense scenes).
"""

from __future__ import annotations

import math
from collections import OrderedDict

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QPainter, QPixmap

CHIP_ALPHA = 200
TAG_RGB = (32, 32, 32)
_LIMIT = 4096


class LabelChips:
    def __init__(self):
        self._cache: OrderedDict = OrderedDict()
        self._key = None
        self.font = QFont()
        self.dpr = 1.0
        self.height = 0

    def setup(self, font: QFont, dpr: float) -> LabelChips:
        """Use ``font`` at device pixel ratio ``dpr`` (a change empties the cache)."""
        key = (font.key(), dpr)
        if key != self._key:
            self._key, self.font, self.dpr = key, QFont(font), dpr
            self.height = math.ceil(QFontMetricsF(font).height())
            self._cache.clear()
        return self

    @property
    def made(self) -> object:
        """What the chips are made for (font, pixel ratio): a new object when that changes, so a
        pixmap kept elsewhere (the canvas keeps each label's on its instance) is known stale."""
        return self._key

    def chip(self, text: str, rgb: tuple[int, int, int], pad_left: int, pad_right: int) -> QPixmap:
        key = (text, rgb, pad_left, pad_right)
        pixmap = self._cache.get(key)
        if pixmap is None:
            pixmap = self._cache[key] = self._render(text, rgb, pad_left, pad_right)
            if len(self._cache) > _LIMIT:
                self._cache.popitem(last=False)
        return pixmap

    def label(self, name: str, score: float | None, tags: tuple, rgb: tuple[int, int, int]) -> QPixmap:
        """An instance's whole label: the class chip, the score chip and a chip per tag (2 pixels
        apart), composed into one pixmap once per (name, score text, tags, colour)."""
        score_text = None if score is None else f" {score:.2f}"
        key = ("label", name, score_text, tuple(tags), rgb)
        pixmap = self._cache.get(key)
        if pixmap is not None:
            return pixmap
        parts = [(0, self.chip(name, rgb, 3, 0 if score is not None else 3))]
        if score_text is not None:
            parts.append((0, self.chip(score_text, rgb, 0, 3)))
        parts += [(2, self.tag(tag)) for tag in tags]
        width = sum(gap + self.width(p) for gap, p in parts)
        pixmap = QPixmap(max(1, round(width * self.dpr)), max(1, round(self.height * self.dpr)))
        pixmap.setDevicePixelRatio(self.dpr)
        pixmap.fill(Qt.GlobalColor.transparent)
        painter = QPainter(pixmap)
        x = 0
        for gap, part in parts:
            painter.drawPixmap(x + gap, 0, part)
            x += gap + self.width(part)
        painter.end()
        self._cache[key] = pixmap
        if len(self._cache) > _LIMIT:
            self._cache.popitem(last=False)
        return pixmap

    def tag(self, text: str) -> QPixmap:
        """A label tag's chip (``#fix``): light text on a dark chip with a light rim, unlike any
        class colour, so tags read as tags beside the class and score."""
        return self.chip(f"#{text}", TAG_RGB, 3, 3)

    def width(self, pixmap: QPixmap) -> int:
        """Logical width of a chip."""
        return round(pixmap.width() / self.dpr)

    def _render(self, text: str, rgb, pad_left: int, pad_right: int) -> QPixmap:
        r, g, b = rgb
        w = math.ceil(QFontMetricsF(self.font).horizontalAdvance(text)) + pad_left + pad_right
        pixmap = QPixmap(max(1, round(w * self.dpr)), max(1, round(self.height * self.dpr)))
        pixmap.setDevicePixelRatio(self.dpr)
        pixmap.fill(QColor(r, g, b, CHIP_ALPHA))
        painter = QPainter(pixmap)
        painter.setFont(self.font)
        painter.setPen(QColor(0, 0, 0) if (r * 0.299 + g * 0.587 + b * 0.114) > 140 else QColor(255, 255, 255))
        painter.drawText(QRectF(pad_left, 0, w - pad_left, self.height), Qt.AlignmentFlag.AlignVCenter, text)
        if rgb == TAG_RGB:
            painter.setPen(QColor(220, 220, 220))
            painter.drawRect(QRectF(0.5, 0.5, w - 1, self.height - 1))
        painter.end()
        return pixmap


class ChipLayout:
    """Where each label's chip goes in the viewport: above its box's top-left corner, or just
    above the chips drawn before that cover that spot, so two labels on one object
    (a reviewed label and a new prediction) never read as one chip with the other's score or
    tags. Chips stack upwards, out of the box, where the boundary-error chips hang. Chips are
    bucketed by row, so a frame's layout stays linear."""

    STEPS = 3  # moves above a chip in the way before a chip is left where it overlaps
    REACH = 2 * STEPS + 1  # chip heights a chip may end up above its place (a move rises < 2)

    def __init__(self, height: int):
        self.height = max(1, height)
        self._rows: dict[int, list[tuple[int, int, int]]] = {}

    def place(self, x: int, y: int, width: int) -> int:
        """The top at which a chip of ``width`` whose natural top-left is (``x``, ``y``) is drawn:
        there, or just above the chips in the way (boxes a few pixels apart put chips off any
        fixed grid of rows, so a chip goes above what covers it, not a row up).

        :meth:`_in_the_way` inlined (a dense view places ~400 chips a frame): the same tops."""
        h, rows, right = self.height, self._rows, x + width
        top = y
        for _ in range(self.STEPS + 1):
            row, lowest = top // h, None
            for r in (row - 1, row, row + 1):
                for ax, ay, aw in rows.get(r, ()):
                    if ax < right and x < ax + aw and ay < top + h and top < ay + h and (lowest is None or ay < lowest):
                        lowest = ay
            if lowest is None:
                break
            top = lowest - h
        else:
            top = y
        rows.setdefault(top // h, []).append((x, top, width))
        return top

    def occupy(self, x: int, top: int, width: int) -> None:
        """A chip already on screen at (``x``, ``top``): later chips keep clear of it."""
        self._rows.setdefault(top // self.height, []).append((x, top, width))

    def _in_the_way(self, x: int, y: int, width: int) -> list[int]:
        """The tops of the chips placed so far that a chip at (``x``, ``y``) would overlap."""
        h, row = self.height, y // self.height
        return [ay for r in (row - 1, row, row + 1) for ax, ay, aw in self._rows.get(r, ())
                if ax < x + width and x < ax + aw and ay < y + h and y < ay + h]
