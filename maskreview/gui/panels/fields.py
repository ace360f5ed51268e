"""Fields & classes: which label fields and classes are drawn, and how (opacity, colour, confidence)."""

from __future__ import annotations

from PySide6.QtCore import QRect, QSize, Qt, Signal
from PySide6.QtGui import QColor, QIcon, QPainter, QPixmap
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFormLayout, QGridLayout, QGroupBox, QLabel, QListWidget,
                               QListWidgetItem, QSlider, QVBoxLayout, QWidget)

COLOR_MODE_NAMES = {"class": "Class", "field": "Field", "eval": "Evaluation (TP/FP/FN)"}


def swatch(rgb) -> QIcon:
    pixmap = QPixmap(12, 12)
    pixmap.fill(QColor(*rgb))
    return QIcon(pixmap)


class TextLine(QWidget):
    """Word-wrapped plain text that asks its layout again only when its height changes.

    A QLabel's ``setText`` always calls ``updateGeometry``, and each layout it invalidates does
    the same on its own widget, up to the main window: a counts line that changes at every
    browse step re-laid out the whole window (its docks, then a second repaint pass) each step.
    Here a new text of the same wrapped height is only repainted."""

    FLAGS = int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop | Qt.TextFlag.TextWordWrap)

    def __init__(self, parent=None):
        super().__init__(parent)
        self._text = ""
        self._height = self._height_for(self.width())

    def text(self) -> str:
        return self._text

    def setText(self, text: str) -> None:  # noqa: N802 - QLabel's name
        if text == self._text:
            return
        self._text = text
        height = self._height_for(self.width())
        if height != self._height:
            self._height = height
            self.updateGeometry()
        self.update()

    def _height_for(self, width: int) -> int:
        if not self._text:
            return 0
        return self.fontMetrics().boundingRect(QRect(0, 0, max(width, 1), 10**6), self.FLAGS, self._text).height()

    def hasHeightForWidth(self) -> bool:  # noqa: N802
        return True

    def heightForWidth(self, width: int) -> int:  # noqa: N802
        return self._height_for(width)

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(40, self._height_for(self.width()))

    def minimumSizeHint(self) -> QSize:  # noqa: N802
        return QSize(20, self._height_for(self.width()))

    def resizeEvent(self, event) -> None:  # noqa: N802
        height = self._height_for(event.size().width())
        if height != self._height:
            self._height = height
            self.updateGeometry()
        super().resizeEvent(event)

    def paintEvent(self, event) -> None:  # noqa: N802
        painter = QPainter(self)
        painter.setPen(self.palette().windowText().color())
        painter.drawText(self.rect(), self.FLAGS, self._text)
        painter.end()


class FieldsPanel(QWidget):
    """Emits ``changed({style attribute: value})``; ``sync(style)`` shows the canvas's style."""

    changed = Signal(dict)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.models: dict[str, dict] = {}  # field -> the record of the model that wrote it
        self._counts: dict[str, tuple[int, int]] = {}
        self.field_list = QListWidget()
        self.field_list.setMaximumHeight(150)
        self.class_list = QListWidget()
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.confidence = QSlider(Qt.Orientation.Horizontal)
        self.confidence.setRange(0, 100)
        self.confidence.setToolTip("Hide predictions scored below this (Ctrl+Up / Ctrl+Down)")
        self.confidence_label = QLabel("0.00")
        self.color_mode = QComboBox()
        for key, name in COLOR_MODE_NAMES.items():
            self.color_mode.addItem(name, key)
        self.toggles = {name: QCheckBox(name.capitalize()) for name in ("fills", "contours", "boxes", "labels")}
        self.counts_label = TextLine()  # changes at every browse step: no relayout of the window
        form = QFormLayout()
        form.addRow("Opacity", self.opacity)
        conf_row = QGridLayout()
        conf_row.addWidget(self.confidence, 0, 0)
        conf_row.addWidget(self.confidence_label, 0, 1)
        form.addRow("Confidence ≥", conf_row)
        form.addRow("Colour by", self.color_mode)
        toggles = QGridLayout()
        for i, box in enumerate(self.toggles.values()):
            toggles.addWidget(box, i // 2, i % 2)
        layout = QVBoxLayout(self)
        fields_box = QGroupBox("Label fields")
        QVBoxLayout(fields_box).addWidget(self.field_list)
        classes_box = QGroupBox("Classes")
        QVBoxLayout(classes_box).addWidget(self.class_list)
        layout.addWidget(fields_box)
        layout.addWidget(classes_box, 1)
        layout.addLayout(form)
        layout.addLayout(toggles)
        layout.addWidget(self.counts_label)
        self.field_list.itemChanged.connect(self._fields_changed)
        self.class_list.itemChanged.connect(self._classes_changed)
        self.opacity.valueChanged.connect(lambda v: self.changed.emit({"opacity": v / 100}))
        self.confidence.valueChanged.connect(self._confidence_changed)
        self.color_mode.currentIndexChanged.connect(lambda _: self.changed.emit({"color_mode": self.color_mode.currentData()}))
        for name, box in self.toggles.items():
            box.toggled.connect(lambda on, n=name: self.changed.emit({n: on}))
        self._synced = None  # the style the widgets show (``sync``); None once the reviewer or a refill changed them
        self.changed.connect(self._forget_synced)

    def _forget_synced(self, _changes=None) -> None:
        self._synced = None

    def _confidence_changed(self, value: int) -> None:
        self.confidence_label.setText(f"{value / 100:.2f}")
        self.changed.emit({"conf_threshold": value / 100})

    def _checked_off(self, widget: QListWidget) -> frozenset:
        return frozenset(widget.item(i).data(Qt.ItemDataRole.UserRole) for i in range(widget.count())
                         if widget.item(i).checkState() != Qt.CheckState.Checked)

    def _fields_changed(self, _item) -> None:
        self.changed.emit({"hidden_fields": self._checked_off(self.field_list)})

    def _classes_changed(self, _item) -> None:
        self.changed.emit({"hidden_classes": self._checked_off(self.class_list)})

    def _fill(self, widget: QListWidget, names, hidden, colors=None) -> None:
        self._synced = None
        widget.blockSignals(True)
        widget.clear()
        for i, name in enumerate(names):
            item = QListWidgetItem(name)
            item.setData(Qt.ItemDataRole.UserRole, name)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Unchecked if name in hidden else Qt.CheckState.Checked)
            if colors:
                item.setIcon(swatch(colors[i]))
            widget.addItem(item)
        widget.blockSignals(False)

    def set_fields(self, fields: list[str], hidden=frozenset()) -> None:
        self._fill(self.field_list, fields, hidden)
        self._label_fields()

    def set_models(self, models: dict[str, dict]) -> None:
        """Name each prediction field's model (``core.provenance`` records by field)."""
        self.models = dict(models)
        self._label_fields()

    def _label_fields(self) -> None:
        from maskreview.core.model.provenance import model_label

        self.field_list.blockSignals(True)
        for i in range(self.field_list.count()):
            item = self.field_list.item(i)
            name = item.data(Qt.ItemDataRole.UserRole)
            record = self.models.get(name)
            text = name
            if name in self._counts:
                text += "  ({}/{})".format(*self._counts[name])
            if record:  # the model on a line of its own: field and model names are both long
                text += f"\n      by {short_model_name(record)}"
            item.setText(text)
            item.setToolTip(model_tooltip(record, model_label) if record else
                            f"{name}: labels no model run wrote (ground truth, imports)")
        self.field_list.blockSignals(False)

    def set_classes(self, classes: list[str], colors, hidden=frozenset()) -> None:
        self._fill(self.class_list, classes, hidden, colors)

    def sync(self, style) -> None:
        """Show ``style`` (an OverlayStyle) without emitting ``changed``; nothing to do when the
        widgets show it already (every browse step syncs: ~0.5 ms of the step's block)."""
        if style == self._synced:
            return
        widgets = [self.opacity, self.confidence, self.color_mode, *self.toggles.values(), self.field_list, self.class_list]
        for w in widgets:
            w.blockSignals(True)
        self.opacity.setValue(round(style.opacity * 100))
        self.confidence.setValue(round(style.conf_threshold * 100))
        self.confidence_label.setText(f"{style.conf_threshold:.2f}")
        self.color_mode.setCurrentIndex(max(self.color_mode.findData(style.color_mode), 0))
        for name, box in self.toggles.items():
            box.setChecked(getattr(style, name))
        for widget, hidden in ((self.field_list, style.hidden_fields), (self.class_list, style.hidden_classes)):
            for i in range(widget.count()):
                item = widget.item(i)
                on = item.data(Qt.ItemDataRole.UserRole) not in hidden
                item.setCheckState(Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)
        for w in widgets:
            w.blockSignals(False)
        self._synced = style

    def set_counts(self, counts: dict[str, tuple[int, int]]) -> None:
        """Visible / total instances per field on the current sample."""
        names = [self.field_list.item(i).data(Qt.ItemDataRole.UserRole) for i in range(self.field_list.count())]
        self._counts = {name: counts.get(name, (0, 0)) for name in names}
        self._label_fields()
        self.counts_label.setText("Visible: " + ", ".join(f"{n} {v}/{t}" for n, (v, t) in counts.items()))


def short_model_name(record: dict) -> str:
    """A model's name as a list shows it: a folder's or config's base name."""
    name = str(record.get("model") or "model").rstrip("/")
    return name.rsplit("/", 1)[-1]


def model_tooltip(record: dict, model_label) -> str:
    rows = [f"written by {model_label(record)}"]
    for key, what in (("config", "config"), ("weights", "weights"), ("weights_sha256", "SHA-256"),
                      ("device", "device"), ("finished", "finished"), ("maskreview_version", "maskreview")):
        if record.get(key):
            rows.append(f"{what}: {record[key]}")
    if record.get("classes"):
        rows.append("classes: " + ", ".join(record["classes"][:12]) + (" …" if len(record["classes"]) > 12 else ""))
    return "\n".join(rows)
