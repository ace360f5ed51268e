"""A searchable class picker: type a few letters of a class, Enter picks it (for relabel)."""

from __future__ import annotations

from PySide6.QtCore import QStringListModel, Qt, Signal
from PySide6.QtWidgets import QCompleter, QDialog, QDialogButtonBox, QLineEdit, QVBoxLayout, QWidget


class ClassPicker(QLineEdit):
    """A line edit completing from the class list (substring, case-insensitive)."""

    picked = Signal(str)

    def __init__(self, classes: list[str] = (), parent: QWidget | None = None, allow_new: bool = True):
        super().__init__(parent)
        self.allow_new = allow_new
        self._model = QStringListModel(list(classes), self)
        completer = QCompleter(self._model, self)
        completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        completer.setFilterMode(Qt.MatchFlag.MatchContains)
        completer.setCompletionMode(QCompleter.CompletionMode.PopupCompletion)
        self.setCompleter(completer)
        self.setPlaceholderText("Type to search classes…")
        completer.activated.connect(self._pick)
        self.returnPressed.connect(lambda: self._pick(self.text()))

    def set_classes(self, classes: list[str]) -> None:
        self._model.setStringList(list(classes))

    def classes(self) -> list[str]:
        return self._model.stringList()

    def current(self) -> str | None:
        return self.resolve(self.text())

    def resolve(self, text: str) -> str | None:
        """The class ``text`` names: an exact match (any case), the single class containing
        it, or ``text`` itself when new classes are allowed."""
        text = text.strip()
        if not text:
            return None
        classes = self.classes()
        exact = [c for c in classes if c.lower() == text.lower()]
        if exact:
            return exact[0]
        containing = [c for c in classes if text.lower() in c.lower()]
        if len(containing) == 1:
            return containing[0]
        return text if self.allow_new else None

    def _pick(self, text: str) -> None:
        name = self.resolve(text)
        if name:
            self.setText(name)
            self.picked.emit(name)


def ask_class(classes: list[str], current: str | None = None, parent: QWidget | None = None) -> str | None:
    """A small modal dialog around :class:`ClassPicker`; the chosen class or ``None``."""
    dialog = QDialog(parent)
    dialog.setWindowTitle("Relabel as…")
    picker = ClassPicker(classes, dialog)
    if current:
        picker.setText(current)
        picker.selectAll()
    buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
    layout = QVBoxLayout(dialog)
    layout.addWidget(picker)
    layout.addWidget(buttons)
    buttons.accepted.connect(dialog.accept)
    buttons.rejected.connect(dialog.reject)
    picker.picked.connect(lambda _: dialog.accept())
    return picker.current() if dialog.exec() == QDialog.DialogCode.Accepted else None
