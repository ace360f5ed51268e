"""Model ▸ Fine-tune on reviewed samples…: train in a process of its own, loss live, mAP before/after.

The training runs in :mod:`maskreview.core.model.finetune_worker` under a ``QProcess``, so neither
torch's threads nor the GIL ever hold up the window. Its JSON lines drive the progress bar,
the loss plot (pyqtgraph) and, at the end, the before/after table (measured on the same
held-out reviewed samples). Cancel asks the worker to stop at the end of the current iteration
(it cleans up), then kills it if it has not stopped within ``KILL_AFTER_MS``; either way the
dialog reports a cancelled run, never a crash.
"""

from __future__ import annotations

import json
import re
import sys

from PySide6.QtCore import QProcess, QTimer, Signal
from PySide6.QtWidgets import (QComboBox, QDialog, QDialogButtonBox, QDoubleSpinBox, QFormLayout, QHBoxLayout,
                               QLabel, QLineEdit, QProgressBar, QPushButton, QSpinBox, QVBoxLayout)

from maskreview.core.fields import GT_FIELD
from maskreview.gui.dialogs.metrics_table import MetricsTable

# One iteration on two busy cores (data loader workers starting, the window and mongod sharing
# them) has taken more than 8 s in CI; the kill is the last resort, not the usual end.
KILL_AFTER_MS = 30_000
CLOSE_WAIT_MS = 8000  # the window is closing: the reviewer should not wait as long


def default_out_dir(base: str) -> str:
    from maskreview.core.model.registry import user_models_dir

    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", base.rstrip("/").rsplit("/", 1)[-1]).strip("-") or "model"
    stem = re.sub(r"-ft-\d+$", "", stem)  # a fine-tune of demo-ft-2 is demo-ft-3, not demo-ft-2-ft-1
    n = 1
    while (user_models_dir() / f"{stem}-ft-{n}").exists():
        n += 1
    return str(user_models_dir() / f"{stem}-ft-{n}")


class FinetuneDialog(QDialog):
    """Set up and watch one fine-tune. ``finished_ok(result)`` carries the worker's ``done`` line;
    ``run_requested(model_dir)`` asks the window to run the new model into its own field."""

    finished_ok = Signal(dict)
    run_requested = Signal(str)

    def __init__(self, dataset, base_model: str, model_choices: list[str], label_fields: list[str], parent=None):
        super().__init__(parent)
        import pyqtgraph as pg

        self.setWindowTitle("Fine-tune on reviewed samples")
        self.dataset = dataset
        self.process: QProcess | None = None
        self.result: dict | None = None
        self.error: str | None = None
        self._cancel_asked = False
        self._killed = False
        self.losses: list[tuple[int, float]] = []
        self._buffer = b""
        self._stderr_tail = b""

        self.base = QComboBox()
        self.base.setEditable(True)
        self.base.addItems(list(dict.fromkeys([base_model, *model_choices])))
        self.base.setCurrentText(base_model)
        self.tag = QLineEdit("reviewed")
        self.tag_count = QLabel()
        self.gt_field = QComboBox()
        self.gt_field.addItems(label_fields)
        if GT_FIELD in label_fields:
            self.gt_field.setCurrentText(GT_FIELD)
        self.iters = QSpinBox()
        self.iters.setRange(1, 100_000)
        self.iters.setValue(100)
        self.iters.setToolTip("Training iterations (about 2-4 s each for the demo model on a laptop CPU)")
        self.lr = QDoubleSpinBox()
        self.lr.setDecimals(5)
        self.lr.setRange(0.00001, 1.0)
        self.lr.setSingleStep(0.001)
        self.lr.setValue(0.005)
        self.out = QLineEdit(default_out_dir(base_model))
        self.base.currentTextChanged.connect(lambda text: self.out.setText(default_out_dir(text)))
        tag_row = QHBoxLayout()
        tag_row.addWidget(self.tag)
        tag_row.addWidget(self.tag_count)
        form = QFormLayout()
        form.addRow("Base model", self.base)
        form.addRow("Samples tagged", tag_row)
        form.addRow("Learn from field", self.gt_field)
        form.addRow("Iterations", self.iters)
        form.addRow("Learning rate", self.lr)
        form.addRow("New model folder", self.out)

        self.stage = QLabel("A quarter of the tagged samples is held out to measure the model before and after.")
        self.stage.setWordWrap(True)
        self.bar = QProgressBar()
        self.plot = pg.PlotWidget(background="w")
        self.plot.setLabel("bottom", "iteration")
        self.plot.setLabel("left", "training loss")
        self.plot.showGrid(x=True, y=True, alpha=0.3)
        self.plot.setMinimumHeight(180)
        self.plot.getAxis("left").enableAutoSIPrefix(False)  # a loss of 0.5 reads 0.5, not 500 (x0.001)
        self.curve = self.plot.plot([], [], pen=pg.mkPen(color=(42, 130, 218), width=2), symbol="o", symbolSize=4)
        self.table = MetricsTable()
        self.table.hide()

        self.start_button = QPushButton("Start")
        self.start_button.setDefault(True)
        self.cancel_button = QPushButton("Cancel training")
        self.cancel_button.setEnabled(False)
        self.run_button = QPushButton("Run the new model into its own field")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.addButton(self.start_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.addButton(self.cancel_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.addButton(self.run_button, QDialogButtonBox.ButtonRole.ActionRole)
        self.run_button.hide()  # offered once a model is trained
        buttons.button(QDialogButtonBox.StandardButton.Close).setAutoDefault(False)
        buttons.rejected.connect(self.reject)
        self.start_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel)
        self.run_button.clicked.connect(self._run_new_model)
        self.tag.textChanged.connect(self._count_tagged)

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.stage)
        layout.addWidget(self.bar)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.table, 1)
        layout.addWidget(buttons)
        self.resize(620, 640)
        self._count_tagged()

    # ------------------------------------------------------------------ set-up
    def tags(self) -> list[str]:
        return [t.strip() for t in self.tag.text().split(",") if t.strip()]

    def _count_tagged(self) -> None:
        tags = self.tags()
        n = len(self.dataset.match_tags(tags)) if tags and self.dataset is not None else 0
        self.tag_count.setText(f"{n} sample{'s' if n != 1 else ''}")
        self.start_button.setEnabled(n >= 2 and self.process is None)
        if n < 2:
            self.stage.setText("Tag at least 2 reviewed samples (R tags the current one): a part is held out "
                               "to measure the model before and after.")

    def command(self) -> list[str]:
        args = ["-m", "maskreview.core.model.finetune_worker", "--dataset", self.dataset.name,
                "--base", self.base.currentText().strip(), "--out", self.out.text().strip(),
                "--tags", ",".join(self.tags()), "--gt-field", self.gt_field.currentText(),
                "--iters", str(self.iters.value()), "--lr", repr(self.lr.value())]
        return [sys.executable, *args]

    # ------------------------------------------------------------------ running
    def start(self) -> None:
        if self.process is not None:
            return
        self.result, self.error, self.losses = None, None, []
        self._cancel_asked = self._killed = False
        self.curve.setData([], [])
        self.table.hide()
        self.run_button.hide()
        self.plot.show()
        process = QProcess(self)
        program, *args = self.command()
        process.setProgram(program)
        process.setArguments(args)
        process.readyReadStandardOutput.connect(self._read_stdout)
        process.readyReadStandardError.connect(self._read_stderr)
        process.finished.connect(self._finished)
        process.errorOccurred.connect(self._process_error)
        self.process = process
        for w in (self.base, self.tag, self.gt_field, self.iters, self.lr, self.out, self.start_button):
            w.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.bar.setRange(0, 0)
        self.stage.setText("starting the training process…")
        process.start()

    @property
    def running(self) -> bool:
        return self.process is not None

    def cancel(self) -> None:
        process = self.process
        if process is None:
            return
        self._cancel_asked = True
        self.stage.setText("cancelling… (after the current iteration)")
        self.cancel_button.setEnabled(False)
        process.write(b"cancel\n")
        QTimer.singleShot(KILL_AFTER_MS, lambda: self._kill(process))

    def _kill(self, process: QProcess) -> None:
        if self.process is process:
            self._killed = True
            process.kill()

    def _read_stderr(self) -> None:
        self._stderr_tail = (self._stderr_tail + bytes(self.process.readAllStandardError()))[-4000:]

    def _read_stdout(self) -> None:
        self._buffer += bytes(self.process.readAllStandardOutput())
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            try:
                self._event(json.loads(line))
            except ValueError:
                continue

    def _event(self, event: dict) -> None:
        kind = event.get("event")
        if kind == "stage":
            self.stage.setText(event["text"])
        elif kind == "progress" and event.get("label") == "training":
            self.bar.setRange(0, max(event["total"], 1))
            self.bar.setValue(event["done"])
            self.bar.setFormat(f"iteration {event['done']} of {event['total']}")
        elif kind == "loss":
            self.losses.append((event["iter"], event["loss"]))
            self.curve.setData([i for i, _ in self.losses], [v for _, v in self.losses])
        elif kind == "done":
            self.result = event
        elif kind == "error":
            self.error = event["message"] if event.get("kind") != "cancelled" else "training cancelled"

    def _process_error(self, error) -> None:
        if error == QProcess.ProcessError.FailedToStart:
            self.error = f"cannot start the training process ({self.process.errorString()})"
            self._finished()

    def _finished(self, *_args) -> None:
        if self.process is None:
            return
        self._read_stdout()
        self.process = None
        for w in (self.base, self.tag, self.gt_field, self.iters, self.lr, self.out):
            w.setEnabled(True)
        self.cancel_button.setEnabled(False)
        self.bar.setRange(0, 1)
        self.bar.setValue(1 if self.result else 0)
        if self.result is not None:
            self._show_result(self.result)
            self.finished_ok.emit(self.result)
        elif self._cancel_asked and (self._killed or not self.error):
            self.stage.setText(f"training cancelled (the process had not stopped after {KILL_AFTER_MS // 1000} s "
                               "and was ended)" if self._killed else "training cancelled")
        else:
            lines = self._stderr_tail.decode(errors="replace").strip().splitlines()
            self.stage.setText(self.error or "the training process stopped" + (f": {lines[-1]}" if lines else ""))
        self.out.setText(default_out_dir(self.base.currentText()))  # a second run never overwrites the first
        self._count_tagged()

    def _show_result(self, result: dict) -> None:
        before, after = result.get("before") or {}, result.get("after") or {}
        self.stage.setText(f"Model written to {result['model_dir']}. Mask AP on {result['held_out']} held-out "
                           f"reviewed sample(s), not trained on: {before.get('mAP', 0):.3f} before, "
                           f"{after.get('mAP', 0):.3f} after.")
        self.table.set_results(before, after, ("before (base model)", "after (fine-tuned)"))
        self.table.show()
        self.run_button.show()
        self.run_button.setDefault(True)

    def _run_new_model(self) -> None:
        if self.result is not None:
            self.run_requested.emit(self.result["model_dir"])
            self.accept()

    def reject(self) -> None:
        """Close: while training, the dialog only hides (Model ▸ Fine-tune… shows it again)."""
        if self.process is not None:
            self.hide()
            parent = self.parentWidget()
            if parent is not None and hasattr(parent, "statusBar"):
                parent.statusBar().showMessage("fine-tuning goes on in the background (Model ▸ Fine-tune… "
                                               "shows it)", 8000)
            return
        super().reject()

    def stop(self) -> None:
        """Cancel and wait (the window is closing): the worker cleans up what it wrote."""
        process = self.process
        if process is None:
            return
        self.cancel()
        if not process.waitForFinished(CLOSE_WAIT_MS):
            process.kill()
            process.waitForFinished(2000)


def open_finetune(window, runs) -> FinetuneDialog | None:
    """Show the dialog for ``window``'s dataset; the new model joins the picker's recent list and
    "Run" makes it the model and runs it over the dataset into its own field."""
    from maskreview.core.model.registry import local_models
    from maskreview.gui.dialogs.model_picker import add_recent_model, recent_models

    if window.dataset is None:
        window.notify("Open a dataset first, then review and tag some samples (R).")
        return None
    if runs.finetune is not None and runs.finetune.running:
        runs.finetune.show()
        runs.finetune.raise_()
        return runs.finetune
    choices = ["demo", *recent_models(window.settings), *(str(p) for p in local_models())]
    dialog = FinetuneDialog(window.dataset, window.model_name, choices, window.label_fields, window)

    def trained(result):
        add_recent_model(window.settings, result["model_dir"])
        window.statusBar().showMessage(f"fine-tuned model written to {result['model_dir']}", 10000)

    def run_new(model_dir):
        runs.choose(model_dir)
        window.run_inference("dataset")

    dialog.finished_ok.connect(trained)
    dialog.run_requested.connect(run_new)
    if runs.finetune is not None:
        runs.finetune.deleteLater()
    runs.finetune = dialog
    dialog.show()
    return dialog
