"""The main window, shown offscreen on a dataset, as the GUI tests drive it."""

from __future__ import annotations

from contextlib import contextmanager

from PySide6.QtCore import QMimeData, QObject, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication


def open_window(qtbot, tmp_path, dataset, size: tuple[int, int] = (1200, 800), wait_ms: int = 20000):
    """A shown ``MainWindow`` with its own settings file, ``dataset`` set, its jobs (statistics) done."""
    from maskreview.gui.app import apply_palette
    from maskreview.gui.main_window import MainWindow
    from maskreview.gui.settings import Settings

    apply_palette(QApplication.instance())
    win = MainWindow(Settings(tmp_path / "gui.ini"))
    qtbot.addWidget(win)
    win.resize(*size)
    win.show()
    qtbot.waitExposed(win)
    win.set_dataset(dataset)
    qtbot.waitUntil(lambda: not win.jobs, timeout=wait_ms)
    return win


@contextmanager
def demo_window(qtbot, tmp_path, demo_coco):
    """The window on the demo set at 1400 x 900, its model keeping 12 detections an image (quick runs)."""
    from maskreview.core.sources import open_source

    win = open_window(qtbot, tmp_path, open_source(demo_coco), (1400, 900))
    win.engine_settings.max_detections = 12
    try:
        yield win
    finally:
        win.close()


def drop_path(widget, path) -> None:
    """Drag ``path`` over ``widget`` and drop it there, as a file manager would."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    pos = widget.rect().center()
    args = (Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, QDragEnterEvent(pos, *args))  # Qt routes a drop to the enter target
    QApplication.sendEvent(widget, QDropEvent(QPointF(pos), *args))


def shown(qtbot, widget, size: tuple[int, int] | None = None):
    """``widget`` owned by the test, resized to ``size``, shown and exposed (offscreen)."""
    qtbot.addWidget(widget)
    if size is not None:
        widget.resize(*size)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


class EventCount(QObject):
    """An event filter counting the events of one type (installed with ``installEventFilter``)."""

    def __init__(self, kind):
        super().__init__()
        self.kind, self.n = kind, 0

    def eventFilter(self, obj, event):  # noqa: N802
        if event.type() == self.kind:
            self.n += 1
        return False


def settle(qtbot) -> None:
    """Let posted layout requests and paints run (a few rounds of the event loop: one event may post
    the next). ``qtbot.wait`` runs the loop; no ``processEvents`` spin (PySide6 leaks a reference each call)."""
    for _ in range(3):
        qtbot.wait(20)
