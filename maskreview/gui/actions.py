"""Every action and shortcut, declared once as data; menus, toolbar and the shortcut sheet read it.

``MainWindow`` binds each action to its method ``do_<name>``; other modules (edit tools,
evaluation) can add entries with :func:`register`.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from PySide6.QtCore import QByteArray, QEvent, QObject, Qt
from PySide6.QtGui import QAction, QIcon, QKeySequence, QPainter, QPixmap
from PySide6.QtSvg import QSvgRenderer
from PySide6.QtWidgets import QAbstractSlider, QAbstractSpinBox, QApplication, QComboBox, QTabBar

_ICON_SIZES = (16, 24, 32, 48, 64, 96)
ICONS_DIR = Path(str(files("maskreview.icons")))  # top-level icons/, mapped as this package (pyproject)


@dataclass(frozen=True)
class ActionSpec:
    name: str
    text: str
    shortcuts: tuple[str, ...] = ()
    menu: str = "View"
    icon: str | None = None
    tip: str = ""
    checkable: bool = False
    toolbar: bool = False


ACTIONS: list[ActionSpec] = [
    ActionSpec("open", "&Open…", ("Ctrl+O",), "File", "open-file", "Open a COCO JSON, an image folder or a FiftyOne dataset", toolbar=True),
    ActionSpec("open_folder", "Open &folder…", ("Ctrl+Shift+O",), "File", "open", "Open a folder of images"),
    ActionSpec("add_scratch", "&Add dropped image to dataset", ("Ctrl+Shift+A",), "File", "add",
               "Add the dropped image and its predictions to the open dataset", toolbar=True),
    ActionSpec("settings", "&Settings…", ("Ctrl+,",), "File", tip="Keys, colours, default thresholds, theme"),
    ActionSpec("quit", "&Quit", ("Ctrl+Q",), "File"),
    ActionSpec("undo", "&Undo", ("Ctrl+Z",), "Edit", tip="Undo the last edit"),
    ActionSpec("redo", "&Redo", ("Ctrl+Shift+Z", "Ctrl+Y"), "Edit", tip="Redo the edit undone last"),
    ActionSpec("prev_sample", "&Previous sample", ("A", "PgUp", "Left"), "Go", "prev", toolbar=True),
    ActionSpec("next_sample", "&Next sample", ("D", "PgDown", "Right"), "Go", "next", toolbar=True),
    ActionSpec("first_sample", "&First sample", ("Home",), "Go"),
    ActionSpec("last_sample", "&Last sample", ("End",), "Go"),
    ActionSpec("next_instance", "Frame next &instance", ("N",), "Go", "instance",
               "Zoom to each instance in turn, with its match drawn beside it", toolbar=True),
    ActionSpec("prev_instance", "Frame previous instance", ("Shift+N",), "Go"),
    ActionSpec("focus_search", "Search filenames", ("Ctrl+F",), "Go"),
    ActionSpec("clear_filters", "Clear browser filters", ("Ctrl+Shift+F",), "Go"),
    ActionSpec("zoom_in", "Zoom &in", ("+", "="), "View", "zoom-in", toolbar=True),
    ActionSpec("zoom_out", "Zoom &out", ("-",), "View", "zoom-out", toolbar=True),
    ActionSpec("fit", "&Fit to window", ("F",), "View", "fit", toolbar=True),
    ActionSpec("actual_size", "&1:1 (one image pixel per screen pixel)", ("Ctrl+0",), "View", "actual-size", toolbar=True),
    ActionSpec("zoom_16", "Zoom 16× for boundary checks", ("Z",), "View"),
    ActionSpec("toggle_gt", "Show &ground truth", ("G",), "View", checkable=True),
    ActionSpec("toggle_predictions", "Show &predictions", ("P",), "View", checkable=True),
    ActionSpec("toggle_fills", "Show &mask fills", ("M",), "View", checkable=True),
    ActionSpec("toggle_contours", "Show &contours", ("C",), "View", checkable=True),
    ActionSpec("toggle_boxes", "Show &boxes", ("B",), "View", "boxes", checkable=True),
    ActionSpec("toggle_labels", "Show &labels and scores", ("L",), "View", "labels", checkable=True),
    ActionSpec("cycle_colors", "Cycle colour: class / field / evaluation", ("V",), "View"),
    ActionSpec("confidence_up", "Raise confidence threshold", ("Ctrl+Up",), "View"),
    ActionSpec("confidence_down", "Lower confidence threshold", ("Ctrl+Down",), "View"),
    ActionSpec("opacity_up", "More opaque fills", ("]",), "View"),
    ActionSpec("opacity_down", "More transparent fills", ("[",), "View"),
    ActionSpec("infer_current", "Run model on &current image", ("Ctrl+I",), "Model", "infer", toolbar=True),
    ActionSpec("infer_selection", "Run model on &selected samples", ("Ctrl+Shift+I",), "Model"),
    ActionSpec("infer_dataset", "Run model on the whole &dataset", ("Ctrl+Alt+I",), "Model", "infer-all", toolbar=True),
    ActionSpec("choose_model", "Choose &model…", (), "Model"),
    ActionSpec("cancel_job", "Cancel running job", ("Esc",), "Model", "cancel"),
    ActionSpec("command_palette", "&Command palette…", ("Ctrl+Shift+P",), "Help",
               tip="Find any action by name and run it"),
    ActionSpec("shortcuts", "&Keyboard shortcuts", ("?", "F1"), "Help", "keyboard"),
    ActionSpec("about", "&About maskreview", (), "Help"),
]


# Actions that gui.integration adds to a built window (by name): listed in the shortcut sheet only.
EXTRA: dict[str, ActionSpec] = {}

# Keys that are not actions (mouse, canvas tools): (group, what, keys) rows of the shortcut sheet.
KEY_HINTS: list[tuple[str, str, str]] = [
    ("Canvas", "Zoom at the cursor", "Mouse wheel"), ("Canvas", "Pan", "Left drag / middle drag"),
    ("Canvas", "Highlight an instance", "Hover"),
]


def icon(name: str | None) -> QIcon:
    """An SVG from ``icons/`` (package ``maskreview.icons``) in the palette's text colour (follows light/dark), sharp at any DPR."""
    if not name:
        return QIcon()
    path = ICONS_DIR / f"{name}.svg"
    if not path.exists():
        return QIcon()
    app = QApplication.instance()
    color = app.palette().windowText().color().name() if app else "#444444"
    renderer = QSvgRenderer(QByteArray(path.read_text().replace("currentColor", color).encode()))
    result = QIcon()
    for size in _ICON_SIZES:  # device pixels: Qt picks the one for the toolbar size x screen ratio
        pixmap = QPixmap(size, size)
        pixmap.fill(Qt.GlobalColor.transparent)
        painter = QPainter(pixmap)
        renderer.render(painter)
        painter.end()
        result.addPixmap(pixmap)
    return result


def spec_of(name: str) -> ActionSpec | None:
    """The declared spec of action ``name`` (main window's or a feature's)."""
    return next((s for s in ACTIONS if s.name == name), None) or EXTRA.get(name)


def set_keys(action: QAction, spec: ActionSpec, keys: tuple[str, ...] | None = None) -> None:
    """``keys`` (default: the spec's) as the action's shortcuts, named in its tooltip."""
    keys = spec.shortcuts if keys is None else keys
    action.setShortcuts([QKeySequence(k) for k in keys])
    tip = (spec.tip or spec.text.replace("&", "")) + (f" ({', '.join(keys)})" if keys else "")
    action.setToolTip(tip)
    action.setStatusTip(tip)


def apply_spec(action: QAction, spec: ActionSpec) -> QAction:
    """Keys, tooltip and checkability of ``spec`` on ``action`` (window-wide keys)."""
    set_keys(action, spec)
    action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
    action.setCheckable(spec.checkable)
    return action


class ArrowKeysStayInControls(QObject):
    """Left and Right browse samples (as in the FiftyOne App) except where a focused control moves
    with them: a slider, a spin box, a combo box or a tab bar keeps its arrows. (Text fields keep
    them already: Qt lets an editor claim the keys it types with.)"""

    KEYS = (Qt.Key.Key_Left, Qt.Key.Key_Right)
    CONTROLS = (QAbstractSlider, QAbstractSpinBox, QComboBox, QTabBar)

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 - Qt's name
        if (event.type() == QEvent.Type.ShortcutOverride and event.key() in self.KEYS
                and isinstance(obj, self.CONTROLS)):
            event.accept()  # the control gets the key press, no shortcut fires
        return False


def build_actions(window) -> dict[str, QAction]:
    """A QAction per spec, connected to ``window.do_<name>`` and added to the window."""
    actions = {}
    for spec in ACTIONS:
        if spec.name in ("undo", "redo"):
            continue  # the undo stack's own actions (their text names the step); main_window applies the spec
        action = apply_spec(QAction(icon(spec.icon), spec.text, window), spec)
        handler = getattr(window, f"do_{spec.name}", None)
        if handler is not None:
            action.triggered.connect(lambda checked=False, h=handler: h())
        window.addAction(action)
        actions[spec.name] = action
    QApplication.instance().installEventFilter(ArrowKeysStayInControls(window))
    return actions


from maskreview.gui.shortcut_sheet import ShortcutSheet  # noqa: E402,F401  (its old home; it reads the specs above)
