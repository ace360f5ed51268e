"""File ▸ Settings: keys (every action, the verdict and tag keys included), colours, default
thresholds and theme. Each change applies at once and is kept (``gui.settings``, ``gui.keymap``)."""

from __future__ import annotations

from PySide6.QtGui import QColor, QKeySequence
from PySide6.QtWidgets import (QColorDialog, QComboBox, QDialog, QDialogButtonBox, QDoubleSpinBox, QFormLayout,
                               QHBoxLayout, QHeaderView, QKeySequenceEdit, QLabel, QLineEdit, QPushButton,
                               QTableWidget, QTableWidgetItem, QTabWidget, QVBoxLayout, QWidget)

from maskreview.core.errors import MaskreviewError
from maskreview.gui import keymap
from maskreview.gui.actions import ACTIONS, EXTRA
from maskreview.gui.settings import COLOR_NAMES, THEMES


class KeysTab(QWidget):
    """A filterable table of actions and keys; pick a row, press the new key, Set."""

    def __init__(self, window):
        super().__init__()
        self.window = window
        self.filter = QLineEdit(placeholderText="Filter actions (e.g. verdict, tag, zoom)")
        self.filter.setClearButtonEnabled(True)
        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["Group", "Action", "Keys"])
        self.table.verticalHeader().hide()
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QTableWidget.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.key_edit = QKeySequenceEdit()
        self.key_edit.setMaximumSequenceLength(1)
        self.set_button, self.reset_button, self.clear_button = (QPushButton("Set"), QPushButton("Default"),
                                                                 QPushButton("No key"))
        self.message = QLabel()
        self.message.setWordWrap(True)
        row = QHBoxLayout()
        row.addWidget(QLabel("New key:"))
        row.addWidget(self.key_edit, 1)
        for button in (self.set_button, self.reset_button, self.clear_button):
            row.addWidget(button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.filter)
        layout.addWidget(self.table)
        layout.addLayout(row)
        layout.addWidget(self.message)
        self.names: list[str] = []
        self.fill()
        self.filter.textChanged.connect(self._filter)
        self.set_button.clicked.connect(lambda: self.set_keys(self.key_edit.keySequence().toString()))
        self.reset_button.clicked.connect(self.reset)
        self.clear_button.clicked.connect(lambda: self.set_keys(""))

    def fill(self) -> None:
        specs = [s for s in [*ACTIONS, *EXTRA.values()] if s.name in self.window.actions_]
        self.names = [s.name for s in specs]
        self.table.setRowCount(len(specs))
        for r, spec in enumerate(specs):
            cells = (spec.menu, spec.text.replace("&", ""), ", ".join(keymap.keys_of(self.window, spec.name)))
            for c, text in enumerate(cells):
                self.table.setItem(r, c, QTableWidgetItem(text))
        self._filter(self.filter.text())

    def _filter(self, text: str) -> None:
        words = text.lower().split()
        for r in range(self.table.rowCount()):
            row = " ".join(self.table.item(r, c).text() for c in range(3)).lower()
            self.table.setRowHidden(r, not all(w in row for w in words))

    def select(self, name: str) -> None:
        self.table.selectRow(self.names.index(name))

    def selected(self) -> str | None:
        rows = self.table.selectionModel().selectedRows()
        return self.names[rows[0].row()] if rows else None

    def set_keys(self, keys: str, name: str | None = None) -> bool:
        """Give the selected action (or ``name``) these keys ("" none), at once; a clash is refused."""
        name = name or self.selected()
        if name is None:
            self.message.setText("Choose an action in the table first.")
            return False
        keys_now = tuple(k.strip() for k in keys.split(",") if k.strip())
        keys_now = tuple(QKeySequence(k).toString() for k in keys_now)
        try:
            keymap.set_action_keys(self.window, name, keys_now)
        except MaskreviewError as exc:
            self.message.setText(f"Not changed: {exc}.")
            return False
        self.message.setText(f"{self.window.actions_[name].text().replace('&', '')}: "
                             f"{', '.join(keys_now) or 'no key'} (works now)")
        row = self.names.index(name)
        self.table.item(row, 2).setText(", ".join(keymap.keys_of(self.window, name)))
        return True

    def reset(self) -> None:
        name = self.selected()
        spec = next((s for s in [*ACTIONS, *EXTRA.values()] if s.name == name), None)
        if spec is not None:
            self.set_keys(", ".join(spec.shortcuts), name)


class AppearanceTab(QWidget):
    def __init__(self, feature):
        super().__init__()
        self.feature = feature
        form = QFormLayout(self)
        self.theme = QComboBox()
        self.theme.addItems([t.capitalize() for t in THEMES])
        self.theme.setCurrentIndex(THEMES.index(feature.window.settings.theme()))
        self.theme.currentIndexChanged.connect(lambda i: feature.apply_theme(THEMES[i]))
        form.addRow("Theme", self.theme)
        self.buttons: dict[str, QPushButton] = {}
        for name, text in COLOR_NAMES.items():
            button = QPushButton()
            button.clicked.connect(lambda _=False, n=name: self.choose(n))
            self.buttons[name] = button
            form.addRow(text, button)
            self._show(name)
        reset = QPushButton("Default colours")
        reset.clicked.connect(self.reset)
        form.addRow("", reset)

    def _show(self, name: str) -> None:
        r, g, b = self.feature.color(name)
        button = self.buttons[name]
        button.setText(f"#{r:02x}{g:02x}{b:02x}")
        button.setStyleSheet(f"background-color: rgb({r},{g},{b}); color: {'black' if r + g + b > 380 else 'white'}")

    def choose(self, name: str, color: QColor | None = None) -> None:
        color = color or QColorDialog.getColor(QColor(*self.feature.color(name)), self, COLOR_NAMES[name])
        if color.isValid():
            self.feature.set_color(name, (color.red(), color.green(), color.blue()))
            self._show(name)

    def reset(self) -> None:
        for name in COLOR_NAMES:
            self.feature.window.settings.set_color(name, None)
        self.feature.apply_colors({})
        for name in COLOR_NAMES:
            self._show(name)


class DefaultsTab(QWidget):
    def __init__(self, feature):
        super().__init__()
        self.feature = feature
        thresholds = feature.state.thresholds
        form = QFormLayout(self)
        self.confidence, self.iou = QDoubleSpinBox(), QDoubleSpinBox()
        for box, value in ((self.confidence, thresholds.confidence), (self.iou, thresholds.iou)):
            box.setRange(0.0, 1.0)
            box.setSingleStep(0.05)
            box.setDecimals(2)
            box.setValue(value)
            box.valueChanged.connect(self._changed)
        form.addRow("Confidence threshold", self.confidence)
        form.addRow("IoU threshold (matching)", self.iou)
        form.addRow(QLabel("Used from now on and at every start (the canvas, the histogram and the evaluation "
                           "dock share them)."))

    def _changed(self, _value=None) -> None:
        self.feature.set_default_thresholds(self.confidence.value(), self.iou.value())


class SettingsDialog(QDialog):
    def __init__(self, window, feature):
        super().__init__(window)
        self.setWindowTitle("Settings")
        self.tabs = QTabWidget()
        self.keys, self.appearance, self.defaults = KeysTab(window), AppearanceTab(feature), DefaultsTab(feature)
        self.tabs.addTab(self.keys, "Keys")
        self.tabs.addTab(self.appearance, "Colours and theme")
        self.tabs.addTab(self.defaults, "Default thresholds")
        where = QLabel(f"Kept in {window.settings.q.fileName()} (keys of verdicts and tags: verdict_keys.json, "
                       "tag_keys.json beside it). Changes apply at once.")
        where.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.tabs)
        layout.addWidget(where)
        layout.addWidget(buttons)
        self.resize(720, 640)
