"""Start-up: the window is on screen first; the database and dataset load behind it."""

from __future__ import annotations

import os
import sys

from PySide6.QtCore import QObject, QThread, Signal
from PySide6.QtWidgets import QApplication, QMessageBox

from maskreview import __version__


class _Loader(QObject):
    """Opens the source (or the demo) on a worker thread; heavy imports happen here."""

    loaded = Signal(object)
    failed = Signal(str)

    def __init__(self, source: str | None, images_dir: str | None):
        super().__init__()
        self.source, self.images_dir = source, images_dir

    def run(self) -> None:
        from maskreview.core.errors import MaskreviewError

        try:
            if self.source:
                from maskreview.core.sources import open_source

                dataset = open_source(self.source, images_dir=self.images_dir)
            else:
                from maskreview.core.demo import ensure_demo_dataset

                dataset = ensure_demo_dataset()
            self.loaded.emit(dataset)
        except MaskreviewError as exc:
            self.failed.emit(str(exc))
        except Exception as exc:  # the app must keep running; show what happened
            self.failed.emit(f"{exc.__class__.__name__}: {exc}")


def start_loading(window, source: str | None, images_dir: str | None = None) -> QThread:
    thread = QThread(window)
    loader = _Loader(source, images_dir)
    loader.moveToThread(thread)
    thread.started.connect(loader.run)
    loader.loaded.connect(window.set_dataset)
    loader.failed.connect(lambda msg: QMessageBox.warning(window, "maskreview", msg))
    loader.loaded.connect(thread.quit)
    loader.failed.connect(thread.quit)
    window._loader = loader  # keep it alive
    thread.start()
    return thread


def create_app() -> QApplication:
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("maskreview")
    app.setOrganizationName("maskreview")
    app.setApplicationVersion(__version__)
    return app


def run_app(source: str | None = None, images_dir: str | None = None) -> int:
    from maskreview.gui.main_window import MainWindow

    app = create_app()
    window = MainWindow()
    window.show()
    start_loading(window, source, images_dir)
    if os.environ.get("MASKREVIEW_SCREENSHOT"):  # for looking at the app without a person
        from PySide6.QtCore import QTimer

        delay = int(os.environ.get("MASKREVIEW_SCREENSHOT_DELAY_MS", "4000"))
        QTimer.singleShot(delay, lambda: (window.grab().save(os.environ["MASKREVIEW_SCREENSHOT"]), app.quit()))
    return app.exec()
