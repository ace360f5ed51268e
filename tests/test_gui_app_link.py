"""View ▸ Open in FiftyOne App and saved views in the browser: the browser's filters, drill-down
and order become the FiftyOne view; views saved in FiftyOne are chosen in the browser."""

from __future__ import annotations

import pytest
from helpers_app import reviewed_dataset
from helpers_gui import open_window
from PySide6.QtCore import QObject, QUrl, Slot
from PySide6.QtGui import QDesktopServices

from maskreview.core import app_bridge as ab
from maskreview.gui import app_link


@pytest.fixture
def window(qtbot, fo, demo_coco, tmp_path, monkeypatch):
    monkeypatch.setenv("MASKREVIEW_CONFIG_DIR", str(tmp_path / "config"))
    dataset, done = reviewed_dataset(demo_coco, "gui-app-link")
    win = open_window(qtbot, tmp_path, dataset, (1400, 900))
    win.canvas.set_style(conf_threshold=0.0)
    qtbot.waitUntil(lambda: win.browser.tag_filter.count() == 3, timeout=30000)  # statistics: the tag list
    win.done = done
    yield win
    win.close()
    ab.shutdown()


def _app_ids(window) -> list[str]:
    return ab.build_view(window.dataset, app_link.current_spec(window)).values("id")


def test_filters_and_order_become_the_fiftyone_view(window, qtbot):
    browser = window.browser
    assert _app_ids(window) == browser.visible_ids()
    browser.tag_filter.setCurrentIndex(browser.tag_filter.findData("reviewed"))
    assert sorted(_app_ids(window)) == sorted(browser.visible_ids()) == sorted([window.done["sample"],
                                                                               window.done["second"]])
    browser.clear_filters()
    name = window.dataset.values("filepath")[5].rsplit("/", 1)[1]
    browser.search.setText(name[-7:].upper())
    assert _app_ids(window) == browser.visible_ids() and len(browser.visible_ids()) == 1
    browser.clear_filters()

    # an evaluation drill-down (a confusion cell, a failure group): samples and labels
    results = window.evaluation
    with qtbot.waitSignal(results.results_changed, timeout=60000):
        from maskreview.gui import integration

        integration.evaluate(window)
    res = results.results
    fn = res.gt.outcome == "fn"
    samples = sorted({res.sample_ids[i] for i in res.gt.img[fn]})
    window.apply_filter(samples, list(res.gt.label_id[fn]), "missed")
    spec = app_link.current_spec(window)
    view = ab.build_view(window.dataset, spec)
    assert sorted(view.values("id")) == sorted(browser.visible_ids()) == samples
    assert sorted(view.values("ground_truth.detections.id", unwind=True)) == sorted(res.gt.label_id[fn])
    window.apply_filter(samples[:2], None, "two samples")  # samples only (a failure group of images)
    assert sorted(_app_ids(window)) == sorted(browser.visible_ids()) == sorted(samples[:2])
    window.apply_filter(None, None, "all")

    # the evaluation's sort order: the browser is ordered, the App sorts by the same counts
    with qtbot.waitSignal(results.sort_requested, timeout=5000):
        results.sort_box.setCurrentIndex(1)  # most false positives
    fp = dict(zip(*window.dataset.values(["id", "eval_fp"])))
    shown = [fp[i] for i in browser.visible_ids()]
    assert shown == sorted(shown, reverse=True) and shown[0] > shown[-1]
    view = ab.build_view(window.dataset, app_link.current_spec(window))
    assert [type(s).__name__ for s in view._stages] == ["SortBy"]
    assert view.values("eval_fp") == shown
    qtbot.waitUntil(lambda: not window.jobs and not results._rematch_job.isRunning(), timeout=30000)

    # at the canvas's threshold 0.5 the browser counts FP there, not as stored (at 0): the App takes its order
    with qtbot.waitSignal(results.rematched, timeout=30000):
        window.canvas.set_style(conf_threshold=0.5)
    qtbot.waitUntil(lambda: not window.jobs and not results._rematch_job.isRunning(), timeout=30000)
    assert browser.order is not None and _app_ids(window) == browser.visible_ids()
    assert browser.visible_ids() != [i for i in view.values("id")]  # the order at 0 differs: not vacuous


def test_saved_views_both_ways_in_the_browser(window, qtbot):
    browser, box = window.browser, window.saved_views
    browser.tag_filter.setCurrentIndex(browser.tag_filter.findData("hard"))
    assert app_link.save_current_view(window, "hard ones")
    assert [box.itemText(i) for i in range(box.count())] == ["No saved view", "hard ones"]
    assert window.dataset.load_saved_view("hard ones").values("id") == [window.done["second"]]
    assert not app_link.save_current_view(window, "hard ones")  # a dialog says the name is taken
    assert "already has a saved view 'hard ones'" in window._message.text()
    browser.clear_filters()

    # saved in the App (the same dataset document, another process's handle)
    from maskreview.core.store import fiftyone

    other = fiftyone().load_dataset(window.dataset.name)
    in_app = other.match_tags("reviewed").sort_by("filepath", reverse=True)
    other.save_view("from the app", in_app)
    box.choose("from the app")
    assert browser.visible_ids() == in_app.values("id")
    assert box.current_name() == "from the app"
    assert app_link.current_spec(window).saved_view == "from the app"
    browser.clear_filters()
    assert box.currentIndex() == 0 and len(browser.visible_ids()) == len(window.dataset)


def test_open_in_fiftyone_app_starts_reuses_and_stops_the_server(window, qtbot):
    class Browser(QObject):  # Qt's own hook for where URLs open: here, nowhere
        def __init__(self):
            super().__init__()
            self.urls = []

        @Slot(QUrl)
        def open(self, url):
            self.urls.append(url.toString())

    opened = Browser()
    QDesktopServices.setUrlHandler("http", opened, "open")
    try:
        window.browser.tag_filter.setCurrentIndex(window.browser.tag_filter.findData("reviewed"))
        window.actions_["open_in_fiftyone"].trigger()
        qtbot.waitUntil(lambda: window.app_url is not None and not window.jobs, timeout=180000)
        server = ab.running_server()
        assert server is not None and opened.urls == [window.app_url] == [server.dataset_url(window.dataset.name)]
        assert ab.serves_dataset(server.port, window.dataset)
        assert sorted(ab._session.view.values("id")) == sorted(window.browser.visible_ids())
        process = server.process

        window.browser.clear_filters()
        window.actions_["open_in_fiftyone"].trigger()
        qtbot.waitUntil(lambda: len(opened.urls) == 2 and not window.jobs, timeout=60000)
        assert ab.running_server() is server and server.process is process and process.poll() is None
        assert len(ab._session.view) == len(window.dataset)
    finally:
        QDesktopServices.unsetUrlHandler("http")
    ab.shutdown()  # what quitting the app does (QApplication.aboutToQuit)
    assert process.poll() is not None and ab.running_server() is None
