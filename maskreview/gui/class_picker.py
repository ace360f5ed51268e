"""Class pickers: type a few letters of a class, Enter picks it (relabel, a new instance's class)."""

from __future__ import annotations

import difflib

from PySide6.QtCore import QStringListModel, Qt, Signal
from PySide6.QtWidgets import (QCompleter, QDialog, QDialogButtonBox, QLabel, QLineEdit, QListWidget, QMessageBox,
                               QVBoxLayout, QWidget)


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


class ClassDialog(QDialog):
    """Choose a class from the dataset's classes (listed, filtered as you type); a name that is no
    class yet is taken only after a confirmation, so a typo does not become a new class."""

    def __init__(self, classes: list[str], current: str | None = None, title: str = "Class",
                 prompt: str = "Class:", parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle(title)
        self.chosen: str | None = None
        self.picker = ClassPicker(classes, self)
        self.picker.setCompleter(None)  # the list below is the completion
        self.list = QListWidget(self)
        self.list.addItems(list(classes))
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(prompt))
        layout.addWidget(self.picker)
        layout.addWidget(self.list)
        layout.addWidget(self.buttons)
        self.picker.textEdited.connect(self._filter)
        self.list.currentTextChanged.connect(lambda text: text and self.picker.setText(text))
        self.list.itemDoubleClicked.connect(lambda item: self._accept_text(item.text()))
        self.picker.returnPressed.disconnect()  # Enter is the dialog's default button (OK)
        self.buttons.accepted.connect(lambda: self._accept_text(self.picker.text()))
        self.buttons.rejected.connect(self.reject)
        if current:
            self.picker.setText(current)
            self.picker.selectAll()
            matches = self.list.findItems(current, Qt.MatchFlag.MatchExactly)
            if matches:
                self.list.setCurrentItem(matches[0])
        self.picker.setFocus()

    def _filter(self, text: str) -> None:
        needle = text.strip().lower()
        first = None
        for row in range(self.list.count()):
            item = self.list.item(row)
            item.setHidden(bool(needle) and needle not in item.text().lower())
            if first is None and not item.isHidden():
                first = item
        self.list.blockSignals(True)  # highlight the first match without overwriting what is typed
        self.list.setCurrentItem(first)
        self.list.blockSignals(False)

    def _accept_text(self, text: str) -> None:
        name = self.picker.resolve(text)
        if not name:
            return
        if name not in self.picker.classes() and not confirm_new_class(name, self.picker.classes(), self):
            self.picker.setFocus()
            self.picker.selectAll()
            return
        self.chosen = name
        self.accept()


def confirm_new_class(name: str, classes: list[str], parent: QWidget | None = None) -> bool:
    """Ask before ``name`` becomes a class the dataset does not have yet."""
    near = ", ".join(difflib.get_close_matches(name, classes, n=3, cutoff=0.5))
    text = (f"'{name}' is not a class of this dataset."
            + (f" Did you mean {near}?" if near else "")
            + f"\n\nCreate the new class '{name}'?")
    answer = QMessageBox.question(parent, "New class", text,
                                  QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                                  QMessageBox.StandardButton.No)
    return answer == QMessageBox.StandardButton.Yes


def ask_class(classes: list[str], current: str | None = None, parent: QWidget | None = None,
              title: str = "Relabel as…", prompt: str = "Class:") -> str | None:
    """A modal :class:`ClassDialog`; the chosen class or ``None`` (cancelled)."""
    dialog = ClassDialog(classes, current, title, prompt, parent)
    return dialog.chosen if dialog.exec() == QDialog.DialogCode.Accepted else None
