"""The browser's filters and the class histogram, from the review state.

The search and the tag filter (``state.filters.search``, ``.tag``) are one database query the
state runs (``store.reader.browse_ids``); the tag index it uses is made here, off the GUI thread,
when a dataset opens. The class filter (``.label_class``) becomes the sample restriction
``"class"`` here (a database query off the state); the class
histogram counts what is shown: the samples of the current view, the visible fields and classes,
the labels over the confidence threshold (or a drill-down's labels).
"""

from __future__ import annotations

from PySide6.QtCore import QTimer


class BrowsingFeature:
    def __init__(self, window, state):
        self.window, self.state = window, state
        self.timer = QTimer(window, singleShot=True, interval=300, timeout=self.refresh_statistics)
        f = state.filters
        state.events.dataset.connect(lambda *_: self.prepare_queries())
        f.events.label_class.connect(self._class_changed)
        f.events.all.connect(self._filters_changed)
        state.thresholds.events.confidence.connect(self._confidence_changed)
        state.display.events.all.connect(lambda *_: self.timer.start())
        window.histogram.bar_clicked.connect(self._bar_clicked)

    # ------------------------------------------------------------------ filters
    def prepare_queries(self) -> None:
        """The tag filter's index (made once per dataset, on a worker)."""
        from maskreview.gui import queries, workers

        dataset = self.window.dataset
        if dataset is not None:
            self.window._start_job(workers.Job(lambda progress: queries.prepare_browsing(dataset), "indexes"),
                                   track=False)

    def _class_changed(self, chosen, _old=None) -> None:
        from maskreview.gui import queries

        if chosen is None or self.window.dataset is None:
            self.state.filters.restrict("class", None)
            return
        field, cls = chosen
        threshold = self.state.thresholds.confidence
        ids = queries.ids_with_label(self.window.dataset, field, cls, threshold)
        self.state.filters.restrict("class", ids, f"{cls} in {field}" + (f" (≥ {threshold:.2f})" if threshold else ""))

    def _bar_clicked(self, field, cls) -> None:
        self.state.filters.label_class = (field, cls) if field is not None else None

    def _confidence_changed(self, *_changed) -> None:
        if self.state.filters.label_class is not None:  # the class filter counts what is shown
            self._class_changed(self.state.filters.label_class)
        self.timer.start()

    def _filters_changed(self, info) -> None:
        window = self.window
        hist = window.histogram
        if hist.selected != self.state.filters.label_class:
            hist.selected = self.state.filters.label_class
            hist.update()
        if info.signal.name in ("sample_ids", "label_ids", "search", "tag"):
            n, total = window.browser.model.rowCount(), len(self.state.sample_ids)
            window.statusBar().showMessage(f"showing {n} of {total} samples", 4000)
            self.timer.start()

    # ------------------------------------------------------------------ statistics
    def refresh_statistics(self) -> None:
        """Class counts of what is shown (histogram) and the tag list, computed off the GUI thread."""
        from maskreview.gui import queries, workers

        window, state = self.window, self.state
        dataset = window.dataset
        if dataset is None:
            return
        fields = state.visible_fields() or []
        threshold = state.thresholds.confidence
        f = state.filters
        sample_ids = state.visible_sample_ids() if (f.search or f.tag or f.sample_ids) else None
        label_ids = sorted(f.label_ids) if f.label_ids is not None else None
        hidden = state.display.hidden_classes

        def fn(progress):
            counts = {fd: queries.class_counts(dataset, fd, threshold, sample_ids, label_ids) for fd in fields}
            return counts, queries.all_tags(dataset)

        def ready(result):
            counts, tags = result
            counts = {fd: {k: v for k, v in c.items() if k is not None and k not in hidden} for fd, c in counts.items()}
            window.statistics_ready(counts, tags)

        window._start_job(workers.Job(fn, "statistics"), ready, track=False)
