"""Desktop conventions: command palette, shortcut sheet, Settings (keys, colours, default thresholds,
theme; applied at once), About, and reopening each dataset at the sample last viewed."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QApplication

from maskreview.gui import keymap
from maskreview.gui.actions import icon, spec_of
from maskreview.gui.canvas import boundary_errors, overlay
from maskreview.gui.features.menus import name_every_key

_DEFAULT_COLORS = {"tp": overlay.EVAL_COLORS["tp"], "fp": overlay.EVAL_COLORS["fp"], "fn": overlay.EVAL_COLORS["fn"],
                   "missed": boundary_errors.MISSED, "added": boundary_errors.ADDED,
                   "field0": overlay.FIELD_COLORS[0], "field1": overlay.FIELD_COLORS[1]}


LAST_SAMPLE_DELAY_MS = 1000


class DesktopFeature:
    """Installed last: it applies the user's keys to every action the other features added."""

    def __init__(self, window, state):
        self.window, self.state = window, state
        self.palette = self.sheet = self.settings_dialog = self.about_dialog = None
        actions = window.actions_
        actions["command_palette"].triggered.connect(self.open_palette)
        actions["settings"].triggered.connect(self.open_settings)
        actions["about"].triggered.connect(self.open_about)
        keymap.apply_saved(window)
        name_every_key(window)  # menus name every key of an action (Qt shows the first only)
        self.apply_colors(window.settings.colors())
        self.apply_theme(window.settings.theme(), save=False)
        confidence, iou = window.settings.default_thresholds()
        self.apply_thresholds(confidence, iou)
        # the file is written (an fdatasync on the GUI thread) once browsing pauses, not at every step
        self._last_sample = None  # (dataset, sample id) not written yet
        self._last_sample_timer = QTimer(window, singleShot=True, interval=LAST_SAMPLE_DELAY_MS)
        self._last_sample_timer.timeout.connect(self._write_last_sample)
        self._closing = _OnClose(window, self._write_last_sample)
        window.sample_changed.connect(self._remember_sample)

    # ------------------------------------------------------------------ dialogs
    def open_palette(self):
        from maskreview.gui.palette import CommandPalette

        self.palette = CommandPalette(self.window)
        self.palette.show()
        self.palette.activateWindow()
        return self.palette

    def open_sheet(self):
        from maskreview.gui.shortcut_sheet import ShortcutSheet

        self.sheet = ShortcutSheet(self.window)
        self.sheet.show()
        return self.sheet

    def open_settings(self):
        from maskreview.gui.dialogs.settings import SettingsDialog

        self.settings_dialog = SettingsDialog(self.window, self)
        self.settings_dialog.show()
        return self.settings_dialog

    def open_about(self):
        from maskreview.gui.dialogs.about import AboutDialog

        self.about_dialog = AboutDialog(self.window)
        self.about_dialog.show()
        return self.about_dialog

    # ------------------------------------------------------------------ applied live
    def apply_theme(self, theme: str, save: bool = True) -> None:
        """Light, dark or the system's; icons are redrawn in the new text colour."""
        from maskreview.gui.app import apply_palette

        apply_palette(QApplication.instance(), theme)
        for name, action in self.window.actions_.items():
            spec = spec_of(name)
            if spec is not None and spec.icon:
                action.setIcon(icon(spec.icon))
        if save:
            self.window.settings.set_theme(theme)
            self.window.settings.sync()

    def apply_colors(self, colors: dict[str, tuple[int, int, int]]) -> None:
        """The chosen colours over the defaults (evaluation outcomes, boundary errors, field colours)."""
        chosen = {**_DEFAULT_COLORS, **colors}
        for key in ("tp", "fp", "fn"):
            overlay.EVAL_COLORS[key] = chosen[key]  # read at every draw (canvas, legend, thumbnails)
        boundary_errors.MISSED, boundary_errors.ADDED = chosen["missed"], chosen["added"]
        overlay.FIELD_COLORS[0], overlay.FIELD_COLORS[1] = chosen["field0"], chosen["field1"]
        canvas = self.window.canvas
        if canvas.data is not None:
            canvas.invalidate()
        self.window.browser.model.invalidate()

    def set_color(self, name: str, rgb: tuple[int, int, int] | None) -> None:
        self.window.settings.set_color(name, rgb)
        self.window.settings.sync()
        self.apply_colors(self.window.settings.colors())

    def color(self, name: str) -> tuple[int, int, int]:
        return self.window.settings.colors().get(name, _DEFAULT_COLORS[name])

    def apply_thresholds(self, confidence: float | None, iou: float | None) -> None:
        thresholds = self.state.thresholds
        if confidence is not None:
            thresholds.confidence = confidence
        if iou is not None:
            thresholds.iou = iou

    def set_default_thresholds(self, confidence: float, iou: float) -> None:
        self.window.settings.set_default_thresholds(confidence, iou)
        self.window.settings.sync()
        self.apply_thresholds(confidence, iou)

    # ------------------------------------------------------------------ reopen where you were
    def _remember_sample(self, sample_id) -> None:
        dataset = self.window.dataset
        if sample_id is not None and dataset is not None and self.window.scratch is None:
            self._last_sample = (dataset.name, sample_id)
            self._last_sample_timer.start()

    def _write_last_sample(self) -> None:
        self._last_sample_timer.stop()
        if self._last_sample is not None:
            self.window.settings.set_last_sample(*self._last_sample)
            self._last_sample = None


class _OnClose(QObject):
    """Calls ``fn`` when ``window`` closes (the last sample is remembered before the window goes)."""

    def __init__(self, window, fn):
        super().__init__(window)
        self.fn = fn
        window.installEventFilter(self)

    def eventFilter(self, obj, event) -> bool:  # noqa: N802
        if obj is self.parent() and event.type() == QEvent.Type.Close:
            self.fn()
        return False
