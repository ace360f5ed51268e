"""The window's status bar: a message longer than the room left of the permanent widgets (a
job's progress, the review counts) ends in "…", with the whole text as the bar's tooltip. Qt cut
it at the first permanent widget, often mid-word ("…with no gr")."""

from __future__ import annotations

from PySide6.QtCore import QRect, Qt
from PySide6.QtGui import QPainter
from PySide6.QtWidgets import QStatusBar

ALIGN = Qt.AlignmentFlag.AlignLeading | Qt.AlignmentFlag.AlignVCenter | Qt.TextFlag.TextSingleLine


class StatusBar(QStatusBar):
    def __init__(self, parent=None):
        super().__init__(parent)
        self._permanent = []
        self.messageChanged.connect(lambda _text: self.update())

    def addPermanentWidget(self, widget, stretch: int = 0) -> None:  # noqa: N802 - Qt's name
        self._permanent.append(widget)
        super().addPermanentWidget(widget, stretch)

    def message_rect(self) -> QRect:
        """Where Qt draws the message: from the left edge to the first visible permanent widget."""
        right = self.width() - 12
        shown = [w.x() for w in self._permanent if w.isVisible()]
        if shown:
            right = min(right, min(shown) - 2)
        return QRect(6, 0, max(0, right - 6), self.height())

    def shown_message(self) -> str:
        """The message as drawn: elided to the room it has."""
        return self.fontMetrics().elidedText(self.currentMessage(), Qt.TextElideMode.ElideRight,
                                             self.message_rect().width())

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt's name
        text = self.currentMessage()
        if not text:
            self.setToolTip("")
            return super().paintEvent(event)
        shown = self.shown_message()
        self.setToolTip(text if shown != text else "")
        painter = QPainter(self)
        painter.setPen(self.palette().windowText().color())
        painter.drawText(self.message_rect(), ALIGN, shown)
        painter.end()
