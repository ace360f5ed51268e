"""The sample browser: a virtualized thumbnail grid (QListView + model) with filters.

Only the rows Qt paints ask for a thumbnail. Thumbnails are made on a thread pool (most
recently asked first, so fast scrolling never queues thousands of stale jobs): the image part is
cached on disk under the user cache dir, keyed by path, size and mtime; the label overlay is
drawn on top from the dataset and redrawn when a sample's labels change (e.g. inference).
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from PySide6.QtCore import (QAbstractListModel, QModelIndex, QObject, QPoint, QRect, QSize, Qt, QThreadPool, QTimer,
                            Signal)
from PySide6.QtGui import QColor, QImage, QPalette, QPixmap
from PySide6.QtWidgets import (QComboBox, QHBoxLayout, QLineEdit, QListView, QStyle, QStyledItemDelegate,
                               QToolButton, QVBoxLayout, QWidget)

from shiboken6 import isValid

from maskreview.gui.thumbnail_badges import draw_badges

THUMB = 128  # logical pixels of a thumbnail's longest side (device pixels: times the screen's ratio)
_CELL_PAD = 6
_MEMORY_THUMBS = 1500
# A thumbnail made stale (an edit, undo, a threshold) keeps its old pixmap on show this long before
# it is made again: its worker reads and decodes the whole sample (a dense one: ~20 ms CPU holding
# the GIL, and mongod's read of a ~1 MB document), which otherwise ran on the two cores while the
# edit's own write, canvas update and paint did (#17.3); strokes within it are made again once.
RERENDER_DELAY_MS = 250
_THUMB_VERSION = "1"


def thumbnail_dir() -> Path:
    from maskreview.core.store import user_cache_dir

    return user_cache_dir() / "thumbnails"


def base_thumbnail(path: str, size: int) -> np.ndarray:
    """An RGB thumbnail of ``path`` (longest side ``size``), from the disk cache when possible."""
    import cv2

    from maskreview.core.images import read_image

    try:
        st = os.stat(path)
        key = hashlib.sha1(f"{_THUMB_VERSION}|{path}|{st.st_size}|{st.st_mtime_ns}|{size}".encode()).hexdigest()
    except OSError:
        key = None
    cached = thumbnail_dir() / key[:2] / f"{key}.jpg" if key else None
    if cached is not None and cached.exists():
        bgr = cv2.imread(str(cached), cv2.IMREAD_COLOR)
        if bgr is not None:
            return np.ascontiguousarray(bgr[:, :, ::-1])
    image = read_image(path)
    h, w = image.shape[:2]
    scale = size / max(h, w)
    thumb = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))),
                       interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_NEAREST)
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(f".{threading.get_ident()}.tmp.jpg")
        cv2.imwrite(str(tmp), np.ascontiguousarray(thumb[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, 88])
        os.replace(tmp, cached)
    return thumb


def compose_thumbnail(thumb: np.ndarray, height: int, width: int, instances, colors) -> np.ndarray:
    """Blend the instances' fills and contours over a thumbnail of an image ``height x width``."""
    import cv2

    from maskreview.gui.canvas.overlay import render_layer

    if not instances:
        return thumb
    th, tw = thumb.shape[:2]
    layer = render_layer(instances, colors, height, width, fill_alpha=0.45, contours=True)
    layer = cv2.resize(layer, (tw, th), interpolation=cv2.INTER_AREA).astype(np.float32)
    alpha = layer[..., 3:4] / 255.0
    out = thumb.astype(np.float32) * (1 - alpha) + layer[..., 2::-1]
    return np.clip(out, 0, 255).astype(np.uint8)


def _file_name(path: str) -> str:
    """``os.path.basename``, at a third of its cost (100,000 names when a dataset opens)."""
    name = path.rpartition(os.sep)[2]
    return name.rpartition(os.altsep)[2] if os.altsep else name


class _Signals(QObject):
    ready = Signal(str, int, QImage)  # sample id, version, thumbnail


class _RowOf(Mapping):
    """``{sample id: visible row}`` of a model, from its id -> index map and an inverse of its
    rows made when first asked (numpy, a millisecond for 100,000 rows), not a dict per filter."""

    def __init__(self, index: dict, rows: np.ndarray, n: int):
        self._index, self._rows, self._n = index, rows, n
        self._inverse = None

    def get(self, sid, default=None):
        i = self._index.get(sid)
        if i is None:
            return default
        if self._inverse is None:
            inverse = np.full(self._n, -1, np.int64)
            inverse[self._rows] = np.arange(len(self._rows))
            self._inverse = inverse
        r = int(self._inverse[i])
        return default if r < 0 else r

    def __getitem__(self, sid):
        r = self.get(sid)
        if r is None:
            raise KeyError(sid)
        return r

    def __contains__(self, sid) -> bool:
        return self.get(sid) is not None

    def __iter__(self):
        ids = list(self._index)
        return (ids[i] for i in self._rows.tolist())

    def __len__(self) -> int:
        return len(self._rows)


class SampleListModel(QAbstractListModel):
    """Rows are the browser's visible samples; thumbnails are fetched lazily by ``data``."""

    IdRole = Qt.ItemDataRole.UserRole + 1

    def __init__(self, parent=None):
        super().__init__(parent)
        self.ids: list[str] = []
        self.paths: list[str] = []
        self.names: list[str] = []
        self.rows = np.zeros(0, np.int64)  # indices into ids of the visible rows
        self.row_of: dict[str, int] = {}  # id -> visible row
        self._id_index: dict[str, int] = {}  # id -> index into ids
        self.thumb_size = THUMB
        self.overlay_source = None  # callable(sample ids) -> {id: (h, w, instances, colors)}, thread-safe
        self._pixmaps: OrderedDict = OrderedDict()  # id -> (version, QPixmap)
        self._versions: dict[str, int] = {}
        self._queue: list[str] = []
        self._queued: set[str] = set()
        self._lock = threading.Lock()
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(2)
        self._stale: set[str] = set()  # shown with an old pixmap, made again when the timer fires
        self._stale_timer = QTimer(self, singleShot=True, interval=RERENDER_DELAY_MS, timeout=self._request_stale)
        self._signals = _Signals()
        self._signals.ready.connect(self._on_ready)
        self._placeholder = None  # the delegate draws an empty frame while a thumbnail is made
        self.badges: dict[str, str] = {}  # sample id -> a short text the delegate draws on its thumbnail
        self.sample_badges: dict = {}  # sample id -> thumbnail_badges.SampleBadge (tags, reviewed, FP/FN)

    # ---------------------------------------------------------------- rows
    def set_samples(self, ids: list[str], paths: list[str]) -> None:
        self.beginResetModel()
        self.ids, self.paths = list(ids), list(paths)
        self.names = [_file_name(p) for p in self.paths]
        self.rows = np.arange(len(self.ids), dtype=np.int64)
        self.row_of = {sid: r for r, sid in enumerate(self.ids)}
        self._id_index = self.row_of  # the same map while every row shows; set_rows makes row_of anew
        self._pixmaps.clear()
        self._versions.clear()
        self._stale.clear()
        with self._lock:
            self._queue.clear()
            self._queued.clear()
        self.endResetModel()

    def set_rows(self, rows) -> None:
        """Show the samples at these indices into ``ids`` (a list or an integer array), in this order."""
        rows = np.asarray(rows, np.int64)
        self.beginResetModel()
        self.rows = rows
        every = len(rows) == len(self.ids) and bool((rows == np.arange(len(rows))).all())
        self.row_of = self._id_index if every else _RowOf(self._id_index, rows, len(self.ids))
        self.endResetModel()

    def rowCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.rows)

    def sample_id(self, row: int) -> str | None:
        return self.ids[int(self.rows[row])] if 0 <= row < len(self.rows) else None

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or index.row() >= len(self.rows):
            return None
        i = int(self.rows[index.row()])
        if role == Qt.ItemDataRole.DisplayRole:
            return self.names[i]
        if role == Qt.ItemDataRole.ToolTipRole:
            return self.paths[i]
        if role == self.IdRole:
            return self.ids[i]
        if role == Qt.ItemDataRole.DecorationRole:
            return self._thumbnail(self.ids[i])
        return None

    # ---------------------------------------------------------------- thumbnails
    def invalidate(self, sample_ids=None) -> None:
        """Redraw the overlays of these samples' thumbnails (all when None)."""
        ids = self.ids if sample_ids is None else sample_ids
        for sid in ids:
            self._versions[sid] = self._versions.get(sid, 0) + 1
        rows = sorted(r for r in map(self.row_of.get, ids) if r is not None)
        if len(rows) > 64:  # one signal for the span, not one per row (100,000 after an evaluation)
            rows = [(rows[0], rows[-1])]
        else:
            rows = [(r, r) for r in rows]
        for first, last in rows:
            self.dataChanged.emit(self.index(first), self.index(last), [Qt.ItemDataRole.DecorationRole])

    def _thumbnail(self, sid: str):
        entry = self._pixmaps.get(sid)
        version = self._versions.get(sid, 0)
        if entry is not None:
            self._pixmaps.move_to_end(sid)
            if entry[0] != version:
                self._stale.add(sid)
                if not self._stale_timer.isActive():  # not restarted: a stream of edits still shows
                    self._stale_timer.start()
            return entry[1]
        self._request(sid)
        return self._placeholder

    def _request_stale(self) -> None:
        stale, self._stale = self._stale, set()
        for sid in stale:
            entry = self._pixmaps.get(sid)
            if entry is not None and entry[0] != self._versions.get(sid, 0):
                self._request(sid)

    def _request(self, sid: str) -> None:
        with self._lock:
            if sid in self._queued:
                return
            self._queued.add(sid)
            self._queue.append(sid)
        self._pool.start(self._work)

    def _work(self) -> None:
        with self._lock:
            if not self._queue:
                return
            sid = self._queue.pop()  # newest request first: what is on screen now
            self._queued.discard(sid)
        i = self.row_index(sid)
        if i is None:
            return
        version = self._versions.get(sid, 0)
        size = self.thumb_size
        try:
            thumb = base_thumbnail(self.paths[i], size)
            if self.overlay_source is not None:
                info = self.overlay_source([sid]).get(sid)
                if info is not None:
                    thumb = compose_thumbnail(thumb, *info)
        except Exception:  # an undecodable image gets a placeholder thumbnail
            thumb = np.full((size, size, 3), 90, np.uint8)
            thumb[::8, :] = thumb[:, ::8] = 140
        thumb = np.ascontiguousarray(thumb)
        h, w = thumb.shape[:2]
        image = QImage(thumb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()
        self._signals.ready.emit(sid, version, image)

    def row_index(self, sid: str) -> int | None:
        return self._id_index.get(sid)

    def _on_ready(self, sid: str, version: int, image: QImage) -> None:
        pixmap = QPixmap.fromImage(image)
        pixmap.setDevicePixelRatio(max(1.0, self.thumb_size / THUMB))  # crisp on HiDPI screens
        self._pixmaps[sid] = (version, pixmap)
        while len(self._pixmaps) > _MEMORY_THUMBS:
            self._pixmaps.popitem(last=False)
        r = self.row_of.get(sid)
        if r is not None:
            idx = self.index(r)
            self.dataChanged.emit(idx, idx, [Qt.ItemDataRole.DecorationRole])

    def has_thumbnail(self, sid: str) -> bool:
        entry = self._pixmaps.get(sid)
        return entry is not None and entry[0] == self._versions.get(sid, 0)

    def wait(self, msecs: int = 30000) -> bool:
        return self._pool.waitForDone(msecs)


class ThumbnailDelegate(QStyledItemDelegate):
    """Each cell: the thumbnail scaled to fit a THUMB square (aspect kept, centred), name below.

    Qt's default icon-mode delegate sizes the decoration from the pixmap it is given, so cells
    measured before their thumbnail existed drew later thumbnails squashed; here the cell
    size never depends on the data.
    """

    @staticmethod
    def cell_size(font_metrics) -> QSize:
        return QSize(THUMB + 2 * _CELL_PAD, THUMB + 2 * _CELL_PAD + font_metrics.height() + 2)

    def sizeHint(self, option, index) -> QSize:
        return self.cell_size(option.fontMetrics)

    def paint(self, painter, option, index) -> None:
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        if selected:  # the whole cell, not just the text (Qt's default in icon mode)
            painter.fillRect(option.rect.adjusted(1, 1, -1, -1), option.palette.color(QPalette.ColorRole.Highlight))
        elif option.state & QStyle.StateFlag.State_MouseOver:
            painter.fillRect(option.rect.adjusted(1, 1, -1, -1), option.palette.color(QPalette.ColorRole.Midlight))
        cell = option.rect
        box = QRect(cell.x() + (cell.width() - THUMB) // 2, cell.y() + _CELL_PAD, THUMB, THUMB)
        pixmap = index.data(Qt.ItemDataRole.DecorationRole)
        painter.save()
        if isinstance(pixmap, QPixmap) and not pixmap.isNull():
            size = pixmap.deviceIndependentSize().toSize().scaled(box.size(), Qt.AspectRatioMode.KeepAspectRatio)
            target = QRect(0, 0, size.width(), size.height())
            target.moveCenter(box.center())
            painter.setRenderHint(painter.RenderHint.SmoothPixmapTransform, True)
            painter.drawPixmap(target, pixmap)
        else:
            painter.fillRect(box.adjusted(8, 8, -8, -8), option.palette.color(QPalette.ColorRole.Mid).lighter(115))
        model = index.model()
        badge = model.badges.get(model.sample_id(index.row())) if getattr(model, "badges", None) else None
        if badge:  # e.g. the review queue's progress in this sample, top right of the thumbnail
            chip = option.fontMetrics.boundingRect(badge).adjusted(-4, -1, 4, 1)
            chip.moveTopRight(box.topRight() + QPoint(-2, 2))
            painter.fillRect(chip, QColor(0, 0, 0, 170))
            painter.setPen(QColor(255, 255, 255))
            painter.drawText(chip, Qt.AlignmentFlag.AlignCenter, badge)
        if getattr(model, "sample_badges", None):
            draw_badges(painter, box, model.sample_badges.get(model.sample_id(index.row())), option.fontMetrics)
        role = QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text
        painter.setPen(option.palette.color(role))
        text_rect = QRect(cell.x() + 2, box.bottom() + 3, cell.width() - 4, option.fontMetrics.height())
        name = option.fontMetrics.elidedText(str(index.data() or ""), Qt.TextElideMode.ElideMiddle, text_rect.width())
        painter.drawText(text_rect, Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignVCenter, name)
        painter.restore()


class SampleBrowser(QWidget):
    """Filter bar (text, tag, class chips) above the thumbnail grid.

    The filters, the order and the current sample are the review state's (``state.filters``,
    ``state.current_sample``); the grid shows ``state.visible_sample_ids()`` and follows them.
    """

    current_changed = Signal(object)  # sample id or None
    filters_changed = Signal()

    def __init__(self, parent=None, state=None):
        super().__init__(parent)
        from maskreview.core.review import ReviewState

        self.state = state if state is not None else ReviewState()
        self.model = SampleListModel(self)
        self._staying = None  # the current sample while a filter change keeps it current
        self._aligned_to = (None, None, False)  # (model ids, state ids, whether they are the same)
        self._scroll_tries = 0
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search filenames…")
        self.search.setClearButtonEnabled(True)
        self.tag_filter = QComboBox()
        self.tag_filter.setToolTip("Show only samples with this tag")
        self.tag_filter.addItem("All tags", None)
        self.clear_button = QToolButton()
        self.clear_button.setText("Clear filters")
        self.clear_button.setEnabled(False)  # always there: a filter going on does not widen the dock
        bar = QHBoxLayout()  # second row: the search box has the first to itself (one row squeezed it to "S…")
        bar.setContentsMargins(0, 0, 0, 0)
        bar.addWidget(self.tag_filter, 1)
        bar.addWidget(self.clear_button)
        self.view = QListView()
        self.view.setModel(self.model)
        self.view.setViewMode(QListView.ViewMode.IconMode)
        self.view.setUniformItemSizes(True)
        self.view.setMovement(QListView.Movement.Static)
        self.view.setResizeMode(QListView.ResizeMode.Adjust)
        self.view.setLayoutMode(QListView.LayoutMode.Batched)
        self.view.setBatchSize(500)
        self.delegate = ThumbnailDelegate(self.view)
        self.view.setItemDelegate(self.delegate)
        self.view.setIconSize(QSize(THUMB, THUMB))
        self.view.setGridSize(self.delegate.cell_size(self.view.fontMetrics()))
        self.view.setSpacing(0)
        self.view.setSelectionMode(QListView.SelectionMode.ExtendedSelection)
        self.view.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.view.setWordWrap(False)
        for widget in (self.view, self.view.viewport()):  # dropped files go on to the main window
            widget.setAcceptDrops(False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.search)
        layout.addLayout(bar)
        layout.addWidget(self.view)
        self._bar = bar
        self.search.textChanged.connect(lambda text: setattr(self.state.filters, "search", text))
        self.tag_filter.currentIndexChanged.connect(
            lambda _i: setattr(self.state.filters, "tag", self.tag_filter.currentData()))
        self.clear_button.clicked.connect(self.clear_filters)
        self.state.filters.events.all.connect(self._filters_changed)
        self.state.events.current_sample.connect(self._current_sample_changed)
        self.state.events.sample_ids.connect(lambda new, old: self.apply_filters())
        self.view.selectionModel().currentChanged.connect(self._current)
        self.model.modelReset.connect(lambda: self.view.selectionModel().currentChanged.connect(self._current, Qt.ConnectionType.UniqueConnection))

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self.model.thumb_size = int(THUMB * self.devicePixelRatioF())

    # the state's filters, as the browser's callers (saved views, the App link) read them
    @property
    def id_filters(self) -> dict:
        return self.state.filters.sample_ids

    @property
    def filter_names(self) -> dict:
        f = self.state.filters
        return {**f.descriptions, **({"order": f.order_name} if f.order is not None else {})}

    @property
    def order(self) -> list[str] | None:
        order = self.state.filters.order
        return list(order) if order is not None else None

    def set_samples(self, ids: list[str], paths: list[str]) -> None:
        """The dataset's samples (the state's ``sample_ids`` says which of them to show)."""
        self.model.set_samples(ids, paths)
        if tuple(ids) == self.state.sample_ids:
            self.apply_filters()
        else:  # a browser of its own (no window): its samples are the state's
            self.state.sample_names = tuple(self.model.names)
            self.state.sample_ids = tuple(ids)

    def set_tags(self, tags: list[str]) -> None:
        current = self.tag_filter.currentData()
        self.tag_filter.blockSignals(True)
        self.tag_filter.clear()
        self.tag_filter.addItem("All tags", None)
        for tag in tags:
            self.tag_filter.addItem(tag, tag)
        i = self.tag_filter.findData(current)
        self.tag_filter.setCurrentIndex(max(i, 0))
        self.tag_filter.blockSignals(False)

    def add_bar_widget(self, widget) -> None:
        """Put a widget in the filter bar's second row (under the search box), before Clear filters."""
        self._bar.insertWidget(self._bar.count() - 1, widget, 1)

    def set_order(self, ids, description: str = "") -> None:
        """Show the samples in the order of ``ids`` (the rest after them); None: the dataset's order."""
        self.state.filters.sort(ids, description or "sorted")

    def set_id_filter(self, name: str, ids, description: str = "") -> None:
        """Restrict the grid to ``ids`` under ``name`` (None removes that filter)."""
        self.state.filters.restrict(name, ids, description)

    def clear_filters(self) -> None:
        """Every filter off (the state's ``show_all``); the current sample stays current and in view."""
        self.state.show_all()

    def _filters_changed(self, info=None) -> None:
        f = self.state.filters
        if self.search.text() != f.search:
            self.search.blockSignals(True)
            self.search.setText(f.search)
            self.search.blockSignals(False)
        if self.tag_filter.currentData() != f.tag:
            self.tag_filter.blockSignals(True)
            self.tag_filter.setCurrentIndex(max(self.tag_filter.findData(f.tag), 0))
            self.tag_filter.blockSignals(False)
        if info is None or info.signal.name in ("search", "tag", "sample_ids", "order"):
            self.apply_filters()
        else:
            self._sync_clear_button()

    def apply_filters(self) -> None:
        """Show the state's view of the samples; the current sample stays current (and in view)
        while it is in the view, else the first one becomes current."""
        current = self.state.current_sample or self.current_id()
        index = self.model._id_index  # noqa: SLF001 - the model's own id -> index map
        if self._aligned():  # the model's ids are the state's: its positions are the rows (no look-ups)
            self.state.use_positions(index)
            rows = self.state.visible_positions()
        else:
            rows = [index[sid] for sid in self.state.visible_sample_ids() if sid in index]
        self.model.set_rows(rows)
        self._sync_clear_button()
        self.filters_changed.emit()
        if current is not None and current in self.model.row_of:
            self._staying = current  # back at its new row, the sample on show is not loaded again
            try:
                self.select_id(current)
            finally:
                self._staying = None
        elif len(rows):
            self.select_row(0)
        else:
            self.current_changed.emit(None)

    def _aligned(self) -> bool:
        """Whether the model shows the state's samples in the state's order (compared once per
        change of either list)."""
        ids, state_ids = self.model.ids, self.state.sample_ids
        if self._aligned_to[0] is not ids or self._aligned_to[1] is not state_ids:
            self._aligned_to = (ids, state_ids, tuple(ids) == state_ids)
        return self._aligned_to[2]

    def _sync_clear_button(self) -> None:
        f = self.state.filters
        active = f.active
        self.clear_button.setEnabled(active)
        self.clear_button.setToolTip("Active: " + ", ".join(f.describe()) if active else "No filter is on")

    def _current_sample_changed(self, sample_id, _old=None) -> None:
        if sample_id is not None and sample_id != self.current_id():
            self.select_id(sample_id)

    def visible_ids(self) -> list[str]:
        ids = self.model.ids
        return [ids[i] for i in self.model.rows.tolist()]

    def current_id(self) -> str | None:
        idx = self.view.currentIndex()
        return self.model.sample_id(idx.row()) if idx.isValid() else None

    def selected_ids(self) -> list[str]:
        rows = sorted(i.row() for i in self.view.selectionModel().selectedIndexes())
        return [self.model.sample_id(r) for r in rows]

    def select_row(self, row: int) -> None:
        if 0 <= row < self.model.rowCount():
            index = self.model.index(row)
            self.view.setCurrentIndex(index)
            self.view.scrollTo(index)
            # after a model reset the grid lays its rows out in batches, later (the scroll range grows
            # with them): scroll again until the row is on screen, a few times at most
            self._scroll_tries = 20
            QTimer.singleShot(0, self._scroll_to_current)

    def _scroll_to_current(self) -> None:
        view = self.view
        if not isValid(view) or not view.currentIndex().isValid():
            return
        view.scrollTo(view.currentIndex())
        if not view.viewport().rect().intersects(view.visualRect(view.currentIndex())) and self._scroll_tries > 0:
            self._scroll_tries -= 1
            QTimer.singleShot(25, self._scroll_to_current)

    def select_id(self, sid: str) -> None:
        r = self.model.row_of.get(sid)
        if r is not None:
            self.select_row(r)

    def step(self, delta: int) -> None:
        n = self.model.rowCount()
        if n:
            idx = self.view.currentIndex()
            row = idx.row() if idx.isValid() else -1
            self.select_row(min(max(row + delta, 0), n - 1))

    def _current(self, current, previous=None) -> None:
        sid = self.model.sample_id(current.row()) if current.isValid() else None
        if sid is None or sid != self._staying:
            self.current_changed.emit(sid)
