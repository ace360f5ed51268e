"""The browser's saved-view chooser: the dataset's FiftyOne saved views (saved here or in the
FiftyOne App), read again each time the list opens. Choosing one shows its samples in its
order; the first entry shows all again. Receives the window explicitly.
"""

from __future__ import annotations

from PySide6.QtWidgets import QComboBox

from maskreview.core import app_bridge as ab

FILTER = "saved view"
_NONE = "No saved view"


class SavedViewsBox(QComboBox):
    def __init__(self, window):
        super().__init__()
        self.window_ = window
        self.setToolTip("FiftyOne saved views of this dataset (made here or in the FiftyOne App)")
        self.addItem(_NONE, None)
        self.currentIndexChanged.connect(self._chosen)
        window.dataset_changed.connect(lambda _ds: self.refresh())
        window.browser.filters_changed.connect(self._sync)

    def current_name(self) -> str | None:
        return self.currentData() if FILTER in self.window_.browser.id_filters else None

    def showPopup(self) -> None:
        self.refresh()  # views saved in the App since the last look
        super().showPopup()

    def refresh(self) -> None:
        dataset = self.window_.dataset
        names = ab.saved_views(dataset) if dataset is not None else []
        current = self.currentData()
        self.blockSignals(True)
        self.clear()
        self.addItem(_NONE, None)
        for name in names:
            self.addItem(name, name)
        self.setCurrentIndex(max(self.findData(current), 0) if current in names else 0)
        self.blockSignals(False)
        if current is not None and current not in names and FILTER in self.window_.browser.id_filters:
            self.show_view(None)  # deleted in the App

    def choose(self, name: str | None) -> None:
        self.refresh()
        i = self.findData(name) if name is not None else 0
        if i < 0:
            raise ValueError(f"no saved view {name!r}")
        if i == self.currentIndex():
            self._chosen(i)
        else:
            self.setCurrentIndex(i)

    def _chosen(self, index: int) -> None:
        self.show_view(self.itemData(index))

    def show_view(self, name: str | None) -> None:
        browser, dataset = self.window_.browser, self.window_.dataset
        if name is None or dataset is None:
            browser.set_id_filter(FILTER, None)
            if browser.filter_names.get("order", "").startswith(FILTER):
                browser.set_order(None)
            return
        from maskreview.core.errors import MaskreviewError

        try:
            ids = ab.build_view(dataset, ab.ViewSpec(saved_view=name)).values("id")
        except MaskreviewError as exc:
            self.window_.notify(str(exc))
            return
        browser.set_id_filter(FILTER, ids, f"{FILTER} {name}")
        browser.set_order(ids, f"{FILTER} {name}")

    def _sync(self) -> None:
        if FILTER not in self.window_.browser.id_filters and self.currentIndex() != 0:
            self.blockSignals(True)
            self.setCurrentIndex(0)
            self.blockSignals(False)
