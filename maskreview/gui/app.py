"""Start-up: the window is on screen first; the database and dataset load behind it.

Nothing heavy (torch, detectron2, FiftyOne) is imported before the window shows: the dataset
opens on a worker thread, and the model loads on the first inference.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import time

from PySide6.QtCore import QTimer
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

from maskreview import __version__
from maskreview.desktop import APP_ID
from maskreview.gui.runtime import collect_on_gui_thread, prepare_process

LAUNCHED_AT = time.perf_counter()


def dark_palette() -> QPalette:
    p = QPalette()
    base, window, text = QColor(30, 30, 32), QColor(45, 45, 48), QColor(230, 230, 230)
    roles = {QPalette.ColorRole.Window: window, QPalette.ColorRole.WindowText: text, QPalette.ColorRole.Base: base,
             QPalette.ColorRole.AlternateBase: window, QPalette.ColorRole.ToolTipBase: window,
             QPalette.ColorRole.ToolTipText: text, QPalette.ColorRole.Text: text, QPalette.ColorRole.Button: window,
             QPalette.ColorRole.ButtonText: text, QPalette.ColorRole.BrightText: QColor(255, 80, 80),
             QPalette.ColorRole.Highlight: QColor(42, 130, 218), QPalette.ColorRole.HighlightedText: QColor(255, 255, 255),
             QPalette.ColorRole.Link: QColor(90, 170, 255), QPalette.ColorRole.PlaceholderText: QColor(140, 140, 140)}
    for role, color in roles.items():
        p.setColor(role, color)
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText, QPalette.ColorRole.WindowText):
        p.setColor(QPalette.ColorGroup.Disabled, role, QColor(120, 120, 120))
    return p


def wants_dark(app: QApplication, theme: str = "system") -> bool:
    """``MASKREVIEW_THEME`` first, then the theme chosen in Settings, then the system's scheme."""
    forced = os.environ.get("MASKREVIEW_THEME", "").lower()
    if forced in ("dark", "light"):
        return forced == "dark"
    if theme in ("dark", "light"):
        return theme == "dark"
    from PySide6.QtCore import Qt

    return app.styleHints().colorScheme() == Qt.ColorScheme.Dark


def apply_palette(app: QApplication, theme: str | None = None) -> None:
    """Light, dark or the system's scheme (``theme``; None: the one set last), Fusion style so both
    look the same everywhere."""
    if theme is not None:
        app.setProperty("maskreview_theme", theme)
    theme = app.property("maskreview_theme") or "system"
    app.setStyle("Fusion")
    app.setPalette(dark_palette() if wants_dark(app, theme) else app.style().standardPalette())


def create_app() -> QApplication:
    prepare_process()
    app = QApplication.instance() or QApplication(sys.argv[:1])
    collect_on_gui_thread(app)
    app.setApplicationName("maskreview")
    app.setDesktopFileName(APP_ID)  # the launcher `maskreview desktop install` registers (taskbar icon)
    app.setOrganizationName("maskreview")
    app.setApplicationVersion(__version__)
    apply_palette(app)
    try:
        app.styleHints().colorSchemeChanged.connect(lambda _: apply_palette(app))
    except AttributeError:  # Qt < 6.5
        pass
    return app


def report_exception(window, exc_type, exc, tb) -> None:
    """``sys.excepthook`` while the window runs: an exception escaping a slot gets a dialog and the
    window keeps working. A MaskreviewError says what was wrong with the input; anything else is a
    bug, logged with its traceback."""
    from maskreview.core.errors import MaskreviewError

    if issubclass(exc_type, KeyboardInterrupt):
        sys.__excepthook__(exc_type, exc, tb)
    elif isinstance(exc, MaskreviewError):
        window.notify(str(exc))
    else:
        logging.getLogger("maskreview.gui").error("unexpected error", exc_info=(exc_type, exc, tb))
        window.notify(f"Something went wrong ({exc_type.__name__}: {exc}). The window keeps working; "
                      "the details are in the log.")


def start_loading(window, source: str | None, images_dir: str | None = None):
    """Open ``source``; without one, the last dataset (falling back to the demo), else the demo."""
    if source:
        return window.open_source(source, images_dir)
    return window.open_source(window.settings.last_dataset(), fallback_to_demo=True)


def apply_pixel_limit(window) -> None:
    """The ``images/max_pixels`` setting (settings.ini) raises or lowers the image pixel limit,
    unless ``--max-pixels`` or ``MASKREVIEW_MAX_PIXELS`` says otherwise."""
    from maskreview.core import images
    from maskreview.core.errors import BadInputError

    text = window.settings.value("images/max_pixels")
    try:
        images.set_setting_max_pixels(int(str(text).replace("_", "")) if text not in (None, "") else None)
    except (ValueError, BadInputError):
        images.set_setting_max_pixels(None)
        window.notify(f"images/max_pixels={text!r} in {window.settings.q.fileName()} is not a positive whole "
                      f"number; using the default limit of {images.DEFAULT_MAX_PIXELS} pixels")


def run_app(source: str | None = None, images_dir: str | None = None) -> int:
    app = create_app()
    from maskreview.gui.main_window import MainWindow

    window = MainWindow()
    sys.excepthook = functools.partial(report_exception, window)
    apply_pixel_limit(window)
    window.show()
    app.processEvents()
    window.shown_after_s = time.perf_counter() - LAUNCHED_AT
    if os.environ.get("MASKREVIEW_STARTUP_REPORT"):
        print(f"window shown {window.shown_after_s:.3f} s after import of maskreview.gui.app", flush=True)
    QTimer.singleShot(0, lambda: start_loading(window, source, images_dir))
    if os.environ.get("MASKREVIEW_SCREENSHOT"):  # for looking at the app without a person
        delay = int(os.environ.get("MASKREVIEW_SCREENSHOT_DELAY_MS", "4000"))
        QTimer.singleShot(delay, lambda: (window.grab().save(os.environ["MASKREVIEW_SCREENSHOT"]), window.close(), app.quit()))
    return app.exec()
