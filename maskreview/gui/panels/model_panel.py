"""The "Model" panel: inside the model for the image under review (FPN, RPN, ROI Align, mask head).

The capture (:func:`maskreview.core.model.internals.capture`) runs on a worker thread and is cached
per (sample, model); the pictures come from :mod:`maskreview.core.model.internals_render`, the same
renderer ``maskreview explain`` writes PNGs with. API for the main window:
``set_engine(engine)``, ``set_image(sample_id, image_rgb, gt_detections=None)``,
``select_instance(index)`` (an index into the model's predictions for the image, best first).
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import (QComboBox, QDockWidget, QHBoxLayout, QLabel, QPushButton, QScrollArea, QSlider,
                               QSpinBox, QTabWidget, QVBoxLayout, QWidget)

from maskreview.core.fields import RUN_KEY
from maskreview.core.model import internals as it
from maskreview.core.model import internals_render as rr
from maskreview.gui.workers import Job

CACHE_SIZE = 6  # captures kept (FPN maps dominate: ~10 MB each for the demo model at 256 px)


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

    MAX_SIDE = 768

    def __init__(self, parent=None):
        super().__init__(parent)
        self.engine = None
        self.capture: it.Capture | None = None
        self.image: np.ndarray | None = None
        self.gt_masks: list[np.ndarray] | None = None
        self._gt_detections = None
        self._key = None
        self._cache: OrderedDict = OrderedDict()
        self._job: Job | None = None
        self._pending = None
        self.jobs_started = 0
        self.views: dict[str, np.ndarray] = {}  # the pictures last drawn, by tab

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

    def set_engine(self, engine) -> None:
        self.engine = engine
        self._request()

    def set_image(self, sample_id, image_rgb: np.ndarray, gt_detections=None) -> None:
        self.image = image_rgb
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
        if cap.proposals is not None:
            self.roi_source.blockSignals(True)
            self.roi_source.setCurrentIndex(0)
            self.roi_source.blockSignals(False)
            self.roi_index.blockSignals(True)
            self.roi_index.setValue(it.source_proposal(cap, index))
            self.roi_index.blockSignals(False)
        self.refresh()

    def clear(self) -> None:
        self.capture, self.image, self._key = None, None, None
        for p in (self.fpn_picture, self.rpn_picture, self.roi_grid, self.roi_compare, self.mask_picture):
            p.set_array(None)

    # ------------------------------------------------------------------ computing

    def _engine_key(self):
        e = self.engine
        return getattr(e, RUN_KEY, None) or id(e)

    def _request(self) -> None:
        if self.engine is None or self.image is None:
            return
        key = (self._sample_id, self._engine_key())
        self._key = key
        if key in self._cache:
            self._cache.move_to_end(key)
            self._show(self._cache[key])
            return
        if self._job is not None:  # one capture at a time; the latest request runs next
            self._pending = key
            self.status.setText("Computing the model's stages… (queued)")
            return
        self._start(key)

    def _start(self, key) -> None:
        engine, image = self.engine, self.image

        def fn(progress):
            progress.start(1, "model internals")
            return key, it.capture(engine, image)

        self._job = Job(fn, "model internals", self)
        self._job.succeeded.connect(self._done)
        self._job.failed.connect(self._failed)
        self._job.finished.connect(self._next)
        self.jobs_started += 1
        self.status.setText("Computing the model's stages…")
        self._job.start()

    def _done(self, result) -> None:
        key, cap = result
        self._cache[key] = cap
        while len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        if key == self._key:
            self._show(cap)

    def _failed(self, message: str, kind: str) -> None:
        self.status.setText(f"Cannot look inside the model: {message}")
        self.failed.emit(message)

    def _next(self) -> None:
        self._job = None
        key, self._pending = self._pending, None
        if key is not None and key == self._key and key not in self._cache:
            self._start(key)

    def _show(self, cap: it.Capture) -> None:
        self.capture = cap
        msg = f"{cap.meta_architecture}: {cap.num_instances} instances"
        if cap.proposals is not None:
            msg += f", {len(cap.proposals)} proposals"
        self.status.setText(msg + (f". {cap.message()}" if cap.message() else ""))
        current = self.fpn_level.currentText()
        self.fpn_level.blockSignals(True)
        self.fpn_level.clear()
        self.fpn_level.addItems(list(cap.fpn))
        self.fpn_level.setCurrentText(current if current in cap.fpn else ("p3" if "p3" in cap.fpn else next(iter(cap.fpn))))
        self.fpn_level.blockSignals(False)
        n_inst = cap.num_instances
        n_prop = 0 if cap.proposals is None else len(cap.proposals)
        for w, hi in ((self.fpn_channel, len(next(iter(cap.fpn.values()))) - 1), (self.rpn_instance, n_inst - 1),
                      (self.mask_instance, max(n_inst - 1, 0)), (self.roi_channel, len(next(iter(cap.fpn.values()))) - 1),
                      (self.roi_index, max(n_prop, n_inst, 1) - 1)):
            w.blockSignals(True)
            w.setMaximum(hi)
            w.blockSignals(False)
        self.rpn_topk.blockSignals(True)
        self.rpn_topk.setMaximum(max(n_prop, 1))
        self.rpn_topk.blockSignals(False)
        self.computed.emit(cap)
        self.refresh()

    # ------------------------------------------------------------------ drawing

    def _gt(self) -> list[np.ndarray] | None:
        if self.gt_masks is None and self._gt_detections is not None and self.capture is not None:
            from maskreview.core import masks as mk

            h, w = self.capture.image_size
            dets = getattr(self._gt_detections, "detections", self._gt_detections) or []
            self.gt_masks = [mk.detection_to_bitmap(d, h, w) for d in dets]
        return self.gt_masks

    def refresh(self) -> None:
        """Redraw the current tab from the cached capture (cheap: numpy + cv2 on the GUI thread)."""
        cap, image = self.capture, self.image
        if cap is None or image is None:
            return
        tab = self.tabs.tabText(self.tabs.currentIndex())
        try:
            if tab == "FPN":
                self._draw_fpn(cap, image)
            elif tab == "RPN":
                self._draw_rpn(cap, image)
            elif tab == "ROI Align":
                self._draw_roi(cap, image)
            else:
                self._draw_mask(cap, image)
        except Exception as exc:  # a view that cannot be drawn says why; the panel keeps working
            from maskreview.core.errors import MaskreviewError

            if not isinstance(exc, MaskreviewError):
                raise
            pictures = {"FPN": self.fpn_picture, "RPN": self.rpn_picture, "ROI Align": self.roi_grid}
            self._put(tab, [pictures.get(tab, self.mask_picture)], rr.unavailable_view(str(exc)))

    def _put(self, tab: str, pictures: list[Picture], *arrays) -> None:
        for p, a in zip(pictures, arrays):
            p.set_array(a)
        self.views[tab] = arrays[0] if len(arrays) == 1 else rr.vstack(list(arrays))

    def _draw_fpn(self, cap, image) -> None:
        mode = ("mean", "max", "channel")[self.fpn_mode.currentIndex()]
        view = rr.fpn_view(cap, image, self.fpn_level.currentText(), mode, self.fpn_channel.value(),
                           max_side=self.MAX_SIDE)
        self._put("FPN", [self.fpn_picture], view)

    def _draw_rpn(self, cap, image) -> None:
        if cap.proposals is None:
            self._put("RPN", [self.rpn_picture], rr.unavailable_view(cap.message()))
            return
        k = self.rpn_instance.value()
        self._put("RPN", [self.rpn_picture], rr.rpn_view(cap, image, self.rpn_topk.value(),
                                                         instance=k if k >= 0 else None, max_side=self.MAX_SIDE,
                                                         classes=getattr(self.engine, "classes", None)))

    def _rpn_clicked(self, x: float, y: float) -> None:
        cap = self.capture
        if cap is None or not cap.num_instances:
            return
        f = rr.display_scale(cap.image_size, self.MAX_SIDE)
        x, y = x / f, y / f
        boxes = cap.instance_boxes()
        inside = np.nonzero((boxes[:, 0] <= x) & (x <= boxes[:, 2]) & (boxes[:, 1] <= y) & (y <= boxes[:, 3]))[0]
        if len(inside):
            area = (boxes[inside, 2] - boxes[inside, 0]) * (boxes[inside, 3] - boxes[inside, 1])
            self.select_instance(int(inside[np.argmin(area)]))  # the smallest box under the click

    def _draw_roi(self, cap, image) -> None:
        if cap.box_pooler is None or (cap.proposals is None and not cap.num_instances):
            self._put("ROI Align", [self.roi_grid, self.roi_compare],
                      rr.unavailable_view(cap.unavailable.get("roi", "no ROI pooler")), np.zeros((1, 1, 3), np.uint8))
            return
        source = "instance" if self.roi_source.currentIndex() == 1 or cap.proposals is None else "proposal"
        n = cap.num_instances if source == "instance" else len(cap.proposals)
        index = min(self.roi_index.value(), max(n - 1, 0))
        pooler = "mask" if self.roi_pooler.currentIndex() == 1 and cap.mask_pooler is not None else "box"
        rv = it.roi_view(cap, it.roi_box(cap, source, index), pooler)
        ch = self.roi_channel.value()
        channel = "auto" if ch == -2 else ("mean" if ch == -1 else ch)
        title = f"{source} {index}" + (f" (objectness {cap.proposals.scores[index]:.3f})" if source == "proposal" else "")
        self._put("ROI Align", [self.roi_grid, self.roi_compare],
                  rr.label(rr.roi_grid_view(cap, image, rv), title), rr.roi_compare_view(cap, rv, channel))

    def _draw_mask(self, cap, image) -> None:
        if cap.mask_logits is None or not cap.num_instances:
            why = cap.unavailable.get("mask", "the model found no instance in this image")
            self._put("Mask head", [self.mask_picture], rr.unavailable_view(why))
            return
        classes = getattr(self.engine, "classes", None)
        view = rr.mask_view(cap, image, self.mask_instance.value(), self.mask_threshold.value() / 100,
                            gt_masks=self._gt(), classes=classes)
        self._put("Mask head", [self.mask_picture], view)

    def render_all(self) -> dict[str, np.ndarray]:
        """Draw every tab (for tests and snapshots); returns ``views``."""
        current = self.tabs.currentIndex()
        for i in range(self.tabs.count()):
            self.tabs.setCurrentIndex(i)
            self.refresh()
        self.tabs.setCurrentIndex(current)
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
