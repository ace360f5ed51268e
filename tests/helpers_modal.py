"""Answer the modal dialogs a GUI action opens, as a user would (the dialog's own buttons)."""

from __future__ import annotations

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication


class ModalAnswers:
    """``answers``: callables, each given the next modal dialog that opens (in order). ``seen``
    collects the dialogs' texts; a dialog opened with no answer left is rejected."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.seen: list[str] = []
        self._last = None  # the dialog answered last; one coming back (a box over it closed) is new again
        self._timer = QTimer()
        self._timer.setInterval(20)
        self._timer.timeout.connect(self._poll)
        self._timer.start()

    def _poll(self) -> None:
        dialog = QApplication.activeModalWidget()
        if dialog is self._last:
            return
        self._last = dialog
        if dialog is None:
            return
        text = getattr(dialog, "text", None)
        self.seen.append(text() if callable(text) else dialog.windowTitle())
        answer = self.answers.pop(0) if self.answers else (lambda d: d.reject())
        # later: an answer that opens another modal box must not run inside this timer's slot (Qt does
        # not fire a timer again while its slot runs, so the box would never be answered)
        QTimer.singleShot(0, lambda: answer(dialog))

    def stop(self) -> None:
        self._timer.stop()


def pick_class(name: str):
    """Type ``name`` into a class dialog and press OK."""
    def answer(dialog):
        dialog.picker.setText(name)
        dialog.buttons.button(dialog.buttons.StandardButton.Ok).click()
    return answer


def click(text: str):
    """Press the message box button whose text is ``text`` (e.g. "&Yes", "Replace it")."""
    def answer(box):
        for button in box.buttons():
            if button.text().replace("&", "") == text.replace("&", ""):
                button.click()
                return
        raise AssertionError(f"no button {text!r} in {[b.text() for b in box.buttons()]}")
    return answer
