"""The main window: composition of the sample list and the image view (no business logic)."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QLabel, QListWidget, QMainWindow, QSplitter


class MainWindow(QMainWindow):
    def __init__(self):
        super().__init__()
        self.setWindowTitle("maskreview")
        self.resize(1200, 800)
        self.dataset = None
        self.sample_list = QListWidget()
        self.image_label = QLabel("Opening dataset…")
        self.image_label.setAlignment(Qt.AlignCenter)
        self.image_label.setMinimumSize(400, 300)
        splitter = QSplitter()
        splitter.addWidget(self.sample_list)
        splitter.addWidget(self.image_label)
        splitter.setStretchFactor(1, 4)
        self.setCentralWidget(splitter)
        self.sample_list.currentRowChanged.connect(self.show_sample)
        self.statusBar().showMessage("Loading…")

    def set_dataset(self, dataset) -> None:
        self.dataset = dataset
        self._ids, paths = dataset.values(["id", "filepath"])
        self.sample_list.clear()
        self.sample_list.addItems([p.rsplit("/", 1)[-1] for p in paths])
        self.setWindowTitle(f"maskreview — {dataset.name}")
        self.statusBar().showMessage(f"{dataset.name}: {len(self._ids)} samples")
        if self._ids:
            self.sample_list.setCurrentRow(0)

    def show_sample(self, row: int) -> None:
        from maskreview.core import masks as mk
        from maskreview.core.errors import BadInputError
        from maskreview.core.images import read_image

        if row < 0 or self.dataset is None:
            return
        sample = self.dataset[self._ids[row]]
        try:
            image = read_image(sample.filepath)
        except BadInputError as exc:
            self.image_label.setText(str(exc))
            return
        h, w = image.shape[:2]
        overlay = image.astype(np.float32)
        for field in ("ground_truth", "predictions"):
            dets = sample[field] if sample.has_field(field) else None
            for i, det in enumerate(dets.detections if dets else []):
                color = np.array(_palette(i), np.float32)
                m = mk.detection_to_bitmap(det, h, w)
                overlay[m] = overlay[m] * 0.5 + color * 0.5
        rgb = np.ascontiguousarray(overlay.clip(0, 255).astype(np.uint8))
        qimage = QImage(rgb.data, w, h, 3 * w, QImage.Format_RGB888).copy()
        self.image_label.setPixmap(QPixmap.fromImage(qimage).scaled(
            self.image_label.size(), Qt.KeepAspectRatio, Qt.FastTransformation))


def _palette(i: int) -> tuple[int, int, int]:
    colors = [(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180)]
    return colors[i % len(colors)]
