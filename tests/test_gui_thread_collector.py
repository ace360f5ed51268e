"""The GUI thread's cyclic collector (gui.runtime.GuiThreadCollector) runs a due collection after
the paints already posted, not before them in the same event-loop pass (#17.3: an edit's repaint
waited for it)."""

from __future__ import annotations

import gc

from PySide6.QtWidgets import QApplication, QWidget


class _Painted(QWidget):
    def __init__(self, order: list):
        super().__init__()
        self.order = order

    def paintEvent(self, event):  # noqa: N802 - Qt's name
        self.order.append("paint")


def test_a_due_collection_runs_after_the_repaint_already_posted(qtbot):
    from maskreview.gui.runtime import collect_on_gui_thread

    collector = collect_on_gui_thread(QApplication.instance())
    order: list[str] = []
    widget = _Painted(order)
    qtbot.addWidget(widget)
    widget.show()
    qtbot.waitExposed(widget)
    qtbot.wait(100)  # its first paints done

    def seen(phase, _info):
        if phase == "start":
            order.append("gc")

    gc.callbacks.append(seen)
    try:
        young = [[] for _ in range(collector.threshold[0] + 100)]  # generation 0 past its threshold
        assert gc.get_count()[0] > collector.threshold[0]
        del order[:]
        widget.update()  # an edit's repaint, posted
        collector.timer.timeout.emit()  # the collector's timer in the same pass
        qtbot.waitUntil(lambda: "gc" in order and "paint" in order, timeout=5000)
        assert order.index("paint") < order.index("gc"), order
        del young
    finally:
        gc.callbacks.remove(seen)
