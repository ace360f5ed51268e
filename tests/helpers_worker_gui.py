"""The real window, offscreen, in a process of its own: run the model over a dataset, look inside the
model for one image, predict a dropped image; then print what the process imported, as JSON.

    python tests/helpers_worker_gui.py COCO_JSON SETTINGS_DIR DROPPED_IMAGE

Run by tests/test_gui_inference_worker.py (a pytest process has torch from other tests)."""

from __future__ import annotations

import json
import sys


def main(coco: str, settings_dir: str, dropped: str) -> int:
    from pathlib import Path

    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from maskreview.core import store

    store.configure()
    app = QApplication([])
    from maskreview.core.sources import open_source
    from maskreview.gui.main_window import MainWindow
    from maskreview.gui.settings import Settings

    win = MainWindow(Settings(Path(settings_dir) / "gui.ini"))
    win.resize(1200, 800)
    win.show()
    win.set_dataset(open_source(coco))
    win.model_runs.choose("demo")
    win.engine_settings.max_detections = 8
    found = {}
    steps = iter(["run", "panel", "drop", "report"])

    def step():
        name = next(steps)
        if name == "run":
            job = win.run_inference("dataset", overwrite=True)
            _when(win, lambda: win.inference is None and not job.isRunning(), step)
        elif name == "panel":
            outcome = win.model_runs.last_outcome
            found["predicted"] = outcome.report.predicted if outcome and outcome.report else 0
            panel = win.features.model_panel.panel if hasattr(win, "features") and hasattr(
                win.features, "model_panel") else win.model_panel
            panel.computed.connect(lambda cap: found.setdefault("panel_instances", cap.num_instances))
            panel.failed.connect(lambda message: found.setdefault("panel_error", message))
            _when(win, lambda: "panel_instances" in found or "panel_error" in found, step)
            _when(win, lambda: win.canvas.data is not None and win.canvas.data.image is not None,
                  lambda: (win.docks["Model"].show(), win.docks["Model"].raise_()))
        elif name == "drop":
            job = win.open_scratch(dropped)
            _when(win, lambda: job is None or win._message is not None or bool(
                getattr(win.scratch, "scratch_detections", None)), step)
        else:
            data = win.scratch
            found["dropped"] = len(data.scratch_detections["predictions"].detections) if data is not None and \
                getattr(data, "scratch_detections", None) else -1
            found["message"] = win._message.text() if win._message is not None else None
            found["torch"] = "torch" in sys.modules
            found["detectron2"] = "detectron2" in sys.modules
            found["worker_pid"] = win.model_worker.pid
            print("RESULT " + json.dumps(found), flush=True)
            win.close()
            app.quit()

    _when(win, lambda: not win.jobs, step)
    QTimer.singleShot(240_000, app.quit)  # a hang ends without RESULT: the test fails
    app.exec()
    return 0


def _when(win, condition, then) -> None:
    """``then()`` on the GUI thread once ``condition()`` holds (checked every 100 ms)."""
    from PySide6.QtCore import QTimer

    timer = QTimer(win)

    def check():
        if condition():
            timer.stop()
            then()

    timer.timeout.connect(check)
    timer.start(100)


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
