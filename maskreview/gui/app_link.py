"""View ▸ Open in FiftyOne App and View ▸ Save view in FiftyOne…: the browser's current view
(filters, tag, class, evaluation drill-down, order) as a :class:`ViewSpec`, shown in the App or
saved as a FiftyOne saved view. The App's server starts on a worker (it takes seconds), is
reused by the next launch and stops when the app quits. Receives the window explicitly.
"""

from __future__ import annotations

from PySide6.QtCore import QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QApplication, QInputDialog, QLineEdit

from maskreview.core import app_bridge as ab
from maskreview.gui import workers
from maskreview.gui.actions import ActionSpec


def install(window) -> None:
    from maskreview.gui.integration import add_action
    from maskreview.gui.saved_views import SavedViewsBox

    window.app_url = None
    window.view_menu.addSeparator()
    add_action(window, ActionSpec("open_in_fiftyone", "Open in FiftyOne &App", (), "View",
                                  tip="Show this view (filters, tags, drill-down, order) in the FiftyOne App, "
                                      "in your browser"),
               lambda: open_in_app(window), window.view_menu)
    add_action(window, ActionSpec("save_fiftyone_view", "Save view in FiftyOne…", (), "View",
                                  tip="Save the browser's current view as a FiftyOne saved view (the App lists it)"),
               lambda: ask_and_save_view(window), window.view_menu)
    window.saved_views = SavedViewsBox(window)
    window.browser.add_bar_widget(window.saved_views)
    app = QApplication.instance()
    if app is not None:
        app.aboutToQuit.connect(ab.shutdown)  # waits for it (seconds): left alone it lingers for tens


def current_spec(window) -> ab.ViewSpec:
    """What the browser and canvas show now, as plain data."""
    browser, style = window.browser, window.canvas.style
    drilled = browser.id_filters.get("evaluation")  # a drill-down's samples (core.review's ReviewState.drill_down)
    sort = None
    if browser.order is not None and not browser.filter_names.get("order", "").startswith("saved view"):
        from maskreview.gui.panels.evaluation.dock import SORTS

        dock = getattr(window, "evaluation", None)
        by = dict(SORTS).get(browser.filter_names.get("order"))  # an evaluation sort names itself
        if by is not None and style.conf_threshold:  # the stored <key>_fp / _fn count at 0: the App takes our order
            by = None
        key = dock.results.eval_key if dock is not None and dock.results is not None else None
        sort = (by or "order", key, tuple(browser.order))
    saved = getattr(window, "saved_views", None)
    return ab.ViewSpec(
        text=browser.search.text().strip(),
        tag=browser.tag_filter.currentData(),
        label_class=window.histogram.selected if "class" in browser.id_filters else None,
        min_confidence=float(style.conf_threshold or 0.0),
        score_fields=tuple(window.label_fields),
        sample_ids=tuple(sorted(drilled)) if drilled is not None else None,
        label_ids=tuple(sorted(style.only_labels)) if style.only_labels is not None else None,
        sort=sort,
        saved_view=saved.current_name() if saved is not None else None,
    )


def open_in_app(window):
    """Start (or reuse) the App server and open the browser on the current view; returns the job."""
    if window.dataset is None:
        window.notify("Open a dataset first.")
        return None
    dataset, spec = window.dataset, current_spec(window)

    def work(progress):
        server = ab.show(dataset, ab.build_view(dataset, spec))
        return server.dataset_url(dataset.name)

    window.statusBar().showMessage("Starting the FiftyOne App…")
    job = workers.Job(work, "Open in FiftyOne App", window)
    return window._start_job(job, lambda url: _opened(window, url, spec))


def _opened(window, url: str, spec: ab.ViewSpec) -> None:
    window.app_url = url
    window.statusBar().showMessage(f"FiftyOne App: {url} ({spec.describe()})", 15000)
    QDesktopServices.openUrl(QUrl(url))


def ask_and_save_view(window) -> None:
    if window.dataset is None:
        window.notify("Open a dataset first.")
        return
    name, ok = QInputDialog.getText(window, "Save view in FiftyOne", "Name of the saved view:",
                                    QLineEdit.EchoMode.Normal, "")
    if ok:
        save_current_view(window, name)


def save_current_view(window, name: str) -> bool:
    """Save the current view as a FiftyOne saved view ``name``; a dialog says why not."""
    from maskreview.core.errors import MaskreviewError

    spec = current_spec(window)
    try:
        ab.save_view(window.dataset, name, ab.build_view(window.dataset, spec), description=spec.describe())
    except MaskreviewError as exc:
        window.notify(str(exc))
        return False
    window.saved_views.refresh()
    window.statusBar().showMessage(f"saved view {name.strip()!r}: {spec.describe()}", 8000)
    return True
