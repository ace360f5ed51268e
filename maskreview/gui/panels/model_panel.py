"""The "Model" panel: inside the model for the image under review (FPN, RPN, ROI Align, mask head).

The model lives in the worker process (:mod:`maskreview.core.model.worker`): the capture
(:func:`maskreview.core.model.internals.capture`) runs there, cached per (image, model), and so
does the drawing (:mod:`maskreview.core.model.internals_panel`, the renderer ``maskreview explain``
writes PNGs with); the pictures come back as arrays, with a summary that sets the controls. One
request is in flight at a time; controls changed meanwhile are sent when it answers.
API for the main window: ``set_model(model, weights, settings)``,
``set_image(sample_id, image_rgb, gt_detections=None, path=...)``, ``select_instance(index)`` (an
index into the model's predictions for the image, best first).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import (QComboBox, QDockWidget, QHBoxLayout, QLabel, QPushButton, QScrollArea, QSlider,
                               QSpinBox, QTabWidget, QVBoxLayout, QWidget)

from maskreview.core.model import internals_render as rr
from maskreview.core.model.internals_panel import MAX_SIDE
from maskreview.gui import workers


class _Bridge(QObject):
    arrived = Signal(object)  # a worker message, emitted on the reader thread, delivered on the GUI thread


class Picture(QLabel):
    """Shows an RGB array scaled to fit; ``clicked`` gives the click in the array's pixels."""

    clicked = Signal(float, float)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setMinimumSize(200, 150)
        self.array: np.ndarray | None = None
        self._pixmap: QPixmap | None = None

    def set_array(self, rgb: np.ndarray | None) -> None:
        self.array = rgb
        if rgb is None:
            self._pixmap = None
            self.clear()
            return
        rgb = np.ascontiguousarray(rgb)
        h, w = rgb.shape[:2]
        self._pixmap = QPixmap.fromImage(QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy())
        self._rescale()

    def _rescale(self) -> None:
        if self._pixmap is not None:
            self.setPixmap(self._pixmap.scaled(self.size(), Qt.AspectRatioMode.KeepAspectRatio,
                                               Qt.TransformationMode.SmoothTransformation))

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        self._rescale()

    def mousePressEvent(self, event) -> None:  # noqa: N802
        pm = self.pixmap()
        if self.array is None or pm is None or pm.isNull():
            return
        ox, oy = (self.width() - pm.width()) / 2, (self.height() - pm.height()) / 2
        f = self.array.shape[1] / pm.width()
        pos = event.position()
        self.clicked.emit((pos.x() - ox) * f, (pos.y() - oy) * f)


def _row(*widgets) -> QHBoxLayout:
    row = QHBoxLayout()
    for w in widgets:
        row.addWidget(w)
    row.addStretch(1)
    return row


class ModelPanel(QWidget):
    computed = Signal(object)  # the Capture now shown
    failed = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.client = workers.model_worker()
        self.model: dict | None = None  # model, weights, settings, trust_checkpoint
        self.capture = None  # core.model.internals_panel.CaptureSummary of the image shown
        self.classes: list[str] | None = None
        self.image: np.ndarray | None = None
        self.path: str | None = None
        self.gt_masks: list[np.ndarray] | None = None
        self._gt_detections = None
        self._sample_id = None
        self._key = None
        self._in_flight = None  # (key, tab) of the request the worker is answering
        self._pending = False  # controls changed while it was
        self.jobs_started = 0  # captures the worker computed for this panel (the rest came from its cache)
        self.views: dict[str, np.ndarray] = {}  # the pictures last drawn, by tab
        self._bridge = _Bridge(self)
        self._bridge.arrived.connect(self._arrived)

        self.status = QLabel("Load a model and pick an image to look inside the model.")
        self.status.setWordWrap(True)
        self.tabs = QTabWidget()
        layout = QVBoxLayout(self)
        layout.addWidget(self.status)
        layout.addWidget(self.tabs, 1)
        self._build_fpn_tab()
        self._build_rpn_tab()
        self._build_roi_tab()
        self._build_mask_tab()
        self.tabs.currentChanged.connect(lambda _: self.refresh())

    # ------------------------------------------------------------------ tabs

    def _tab(self, title: str, controls: list, pictures: list[Picture]) -> None:
        page = QWidget()
        v = QVBoxLayout(page)
        v.addLayout(_row(*controls))
        for p in pictures:
            v.addWidget(p, 1)
        self.tabs.addTab(page, title)

    def _build_fpn_tab(self) -> None:
        self.fpn_level = QComboBox()
        self.fpn_mode = QComboBox()
        self.fpn_mode.addItems(["channel mean", "channel max", "one channel"])
        self.fpn_channel = QSpinBox()
        self.fpn_channel.setEnabled(False)
        self.fpn_picture = Picture()
        for w in (self.fpn_level, self.fpn_mode):
            w.currentIndexChanged.connect(lambda _: self.refresh())
        self.fpn_mode.currentIndexChanged.connect(lambda i: self.fpn_channel.setEnabled(i == 2))
        self.fpn_channel.valueChanged.connect(lambda _: self.refresh())
        self._tab("FPN", [QLabel("level"), self.fpn_level, self.fpn_mode, QLabel("channel"), self.fpn_channel],
                  [self.fpn_picture])

    def _build_rpn_tab(self) -> None:
        self.rpn_topk = QSlider(Qt.Orientation.Horizontal)
        self.rpn_topk.setRange(1, 500)
        self.rpn_topk.setValue(50)
        self.rpn_topk_label = QLabel("top 50")
        self.rpn_instance = QSpinBox()
        self.rpn_instance.setRange(-1, 0)
        self.rpn_instance.setValue(-1)
        self.rpn_instance.setSpecialValueText("none")
        self.rpn_instance.setToolTip("final instance whose proposals are shown (or click one in the picture)")
        clear = QPushButton("All proposals")
        clear.clicked.connect(lambda: self.rpn_instance.setValue(-1))
        self.rpn_picture = Picture()
        self.rpn_picture.clicked.connect(self._rpn_clicked)
        self.rpn_topk.valueChanged.connect(lambda v: (self.rpn_topk_label.setText(f"top {v}"), self.refresh()))
        self.rpn_instance.valueChanged.connect(lambda _: self.refresh())
        self._tab("RPN", [QLabel("proposals"), self.rpn_topk, self.rpn_topk_label, QLabel("instance"),
                          self.rpn_instance, clear], [self.rpn_picture])

    def _build_roi_tab(self) -> None:
        self.roi_source = QComboBox()
        self.roi_source.addItems(["proposal", "instance"])
        self.roi_index = QSpinBox()
        self.roi_pooler = QComboBox()
        self.roi_pooler.addItems(["box pooler", "mask pooler"])
        self.roi_channel = QSpinBox()
        self.roi_channel.setRange(-2, 0)
        self.roi_channel.setValue(-2)
        self.roi_channel.setSpecialValueText("most varied")
        self.roi_channel.setToolTip("channel of the pooled grids: most varied under the box, -1 = mean, or one")
        self.roi_grid = Picture()
        self.roi_compare = Picture()
        for w in (self.roi_source, self.roi_pooler):
            w.currentIndexChanged.connect(lambda _: self.refresh())
        for w in (self.roi_index, self.roi_channel):
            w.valueChanged.connect(lambda _: self.refresh())
        self._tab("ROI Align", [self.roi_source, self.roi_index, self.roi_pooler, QLabel("channel"), self.roi_channel],
                  [self.roi_grid, self.roi_compare])

    def _build_mask_tab(self) -> None:
        self.mask_instance = QSpinBox()
        self.mask_threshold = QSlider(Qt.Orientation.Horizontal)
        self.mask_threshold.setRange(1, 99)
        self.mask_threshold.setValue(50)
        self.mask_threshold_label = QLabel("threshold 0.50")
        self.mask_picture = Picture()
        self.mask_instance.valueChanged.connect(lambda _: self.refresh())
        self.mask_threshold.valueChanged.connect(
            lambda v: (self.mask_threshold_label.setText(f"threshold {v / 100:.2f}"), self.refresh()))
        self._tab("Mask head", [QLabel("instance"), self.mask_instance, self.mask_threshold,
                                self.mask_threshold_label], [self.mask_picture])

    # ------------------------------------------------------------------ API

    def set_model(self, model: str, weights: str | None = None, settings=None, trust_checkpoint: bool = False) -> None:
        """The model to look inside (it is loaded in the worker process, not here)."""
        from maskreview.core.model.engine import EngineSettings

        model = {"model": model, "weights": weights, "settings": replace(settings or EngineSettings()),
                 "trust_checkpoint": trust_checkpoint}
        if model != self.model:
            self.model = model
            self._request()

    def set_image(self, sample_id, image_rgb: np.ndarray, gt_detections=None, path: str | None = None) -> None:
        """The image under review: shown from ``image_rgb``, read by the worker from ``path``."""
        self.image, self.path = image_rgb, path
        self._gt_detections = gt_detections
        self.gt_masks = None
        self._sample_id = sample_id
        self._request()

    def select_instance(self, index: int) -> None:
        """Show final instance ``index``: its proposals, its ROI Align grid and its mask."""
        cap = self.capture
        if cap is None or not (0 <= index < cap.num_instances):
            return
        for w in (self.rpn_instance, self.mask_instance):
            w.blockSignals(True)
            w.setValue(index)
            w.blockSignals(False)
        if cap.num_proposals is not None:
            self.roi_source.blockSignals(True)
            self.roi_source.setCurrentIndex(0)
            self.roi_source.blockSignals(False)
            self.roi_index.blockSignals(True)
            self.roi_index.setValue(int(cap.instance_proposal[index]))
            self.roi_index.blockSignals(False)
        self.refresh()

    def clear(self) -> None:
        self.capture, self.image, self.path, self._key = None, None, None, None
        for p in (self.fpn_picture, self.rpn_picture, self.roi_grid, self.roi_compare, self.mask_picture):
            p.set_array(None)

    # ------------------------------------------------------------------ asking the worker

    def _model_key(self):
        m = self.model or {}
        return m.get("model"), m.get("weights"), repr(m.get("settings"))

    def _request(self) -> None:
        if self.model is None or self.image is None or not self.path:
            return
        key = (self._sample_id, self.path, self._model_key())
        if key != self._key:
            self._key, self.capture = key, None
            self.status.setText("Computing the model's stages…")
        self.refresh()

    def _controls(self, tab: str) -> dict:
        if tab == "FPN":
            return {"level": self.fpn_level.currentText() or "p3",
                    "mode": ("mean", "max", "channel")[self.fpn_mode.currentIndex()],
                    "channel": self.fpn_channel.value()}
        if tab == "RPN":
            return {"top_k": self.rpn_topk.value(), "instance": self.rpn_instance.value()}
        if tab == "ROI Align":
            return {"source": ("proposal", "instance")[self.roi_source.currentIndex()],
                    "index": self.roi_index.value(), "pooler": ("box", "mask")[self.roi_pooler.currentIndex()],
                    "channel": self.roi_channel.value()}
        return {"instance": self.mask_instance.value(), "threshold": self.mask_threshold.value() / 100}

    def _args(self, tab: str) -> dict:
        from maskreview.core.model.internals_panel import pack_masks

        gt = self._gt() if tab == "Mask head" else None
        return {**self.model, "path": self.path, "tab": tab, "controls": self._controls(tab),
                "gt_masks": pack_masks(gt)}

    def refresh(self) -> None:
        """Ask the worker for the current tab's picture (one request in flight; the latest controls next)."""
        if self.model is None or self.image is None or not self.path:
            return
        if self._in_flight is not None:
            self._pending = True
            return
        tab = self.tabs.tabText(self.tabs.currentIndex())
        self._pending = False
        self._in_flight = (self._key, tab)
        self.client.submit("internals", on_event=self._bridge.arrived.emit, **self._args(tab))

    def _arrived(self, message: dict) -> None:
        if message.get("event") not in ("done", "error"):
            return
        key, tab = self._in_flight or (None, None)
        self._in_flight = None
        if message["event"] == "error":
            if message.get("kind") != "cancelled":
                self.status.setText(f"Cannot look inside the model: {message.get('message')}")
                self.failed.emit(message.get("message", ""))
        elif key == self._key:
            self._show(message["result"], tab)
        if self._pending or key != self._key:
            self.refresh()

    def _show(self, result: dict, tab: str) -> None:
        cap, new = result["summary"], self.capture is None
        if result["computed"]:
            self.jobs_started += 1
        self.classes = result.get("classes")
        if new:
            self._set_capture(cap)
        pictures = {"FPN": [self.fpn_picture], "RPN": [self.rpn_picture], "ROI Align": [self.roi_grid, self.roi_compare],
                    "Mask head": [self.mask_picture]}[tab]
        self._put(tab, pictures, *result["views"])
        if new:
            self.computed.emit(cap)

    def _set_capture(self, cap) -> None:
        self.capture = cap
        msg = f"{cap.meta_architecture}: {cap.num_instances} instances"
        if cap.num_proposals is not None:
            msg += f", {cap.num_proposals} proposals"
        self.status.setText(msg + (f". {cap.message()}" if cap.message() else ""))
        current = self.fpn_level.currentText()
        self.fpn_level.blockSignals(True)
        self.fpn_level.clear()
        self.fpn_level.addItems(cap.fpn_levels)
        self.fpn_level.setCurrentText(current if current in cap.fpn_levels else
                                      ("p3" if "p3" in cap.fpn_levels else cap.fpn_levels[0]))
        self.fpn_level.blockSignals(False)
        n_inst, n_prop = cap.num_instances, cap.num_proposals or 0
        for w, hi in ((self.fpn_channel, cap.fpn_channels - 1), (self.rpn_instance, n_inst - 1),
                      (self.mask_instance, max(n_inst - 1, 0)), (self.roi_channel, cap.fpn_channels - 1),
                      (self.roi_index, max(n_prop, n_inst, 1) - 1)):
            w.blockSignals(True)
            w.setMaximum(hi)
            w.blockSignals(False)
        self.rpn_topk.blockSignals(True)
        self.rpn_topk.setMaximum(max(n_prop, 1))
        self.rpn_topk.blockSignals(False)

    def _gt(self) -> list[np.ndarray] | None:
        if self.gt_masks is None and self._gt_detections is not None and self.capture is not None:
            from maskreview.core import masks as mk

            h, w = self.capture.image_size
            dets = getattr(self._gt_detections, "detections", self._gt_detections) or []
            self.gt_masks = [mk.detection_to_bitmap(d, h, w) for d in dets]
        return self.gt_masks

    def _put(self, tab: str, pictures: list[Picture], *arrays) -> None:
        for p, a in zip(pictures, arrays):
            p.set_array(a)
        self.views[tab] = arrays[0] if len(arrays) == 1 else rr.vstack(list(arrays))

    def _rpn_clicked(self, x: float, y: float) -> None:
        cap = self.capture
        if cap is None or not cap.num_instances:
            return
        f = rr.display_scale(cap.image_size, MAX_SIDE)
        x, y = x / f, y / f
        boxes = cap.instance_boxes
        inside = np.nonzero((boxes[:, 0] <= x) & (x <= boxes[:, 2]) & (boxes[:, 1] <= y) & (y <= boxes[:, 3]))[0]
        if len(inside):
            area = (boxes[inside, 2] - boxes[inside, 0]) * (boxes[inside, 3] - boxes[inside, 1])
            self.select_instance(int(inside[np.argmin(area)]))  # the smallest box under the click

    def render_all(self) -> dict[str, np.ndarray]:
        """Draw every tab now, waiting for the worker (for tests and snapshots); returns ``views``."""
        for i in range(self.tabs.count()):
            tab = self.tabs.tabText(i)
            result = self.client.call("internals", **self._args(tab))
            self._show(result, tab)
        return self.views


def make_dock(parent=None) -> tuple[QDockWidget, ModelPanel]:
    """The panel in a dock titled "Model" (the main window may instead wrap the panel itself)."""
    dock = QDockWidget("Model", parent)
    dock.setObjectName("dock_model")
    panel = ModelPanel()
    scroll = QScrollArea()
    scroll.setWidgetResizable(True)
    scroll.setWidget(panel)
    dock.setWidget(scroll)
    return dock, panel
