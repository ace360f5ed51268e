"""The minimal window opens offscreen on a dataset and draws its samples."""

from maskreview.core.sources import open_source


def test_window_opens_and_shows_samples(qtbot, fo, demo_coco):
    from maskreview.gui.main_window import MainWindow

    window = MainWindow()
    qtbot.addWidget(window)
    window.show()
    window.set_dataset(open_source(demo_coco))
    assert window.sample_list.count() == 12
    assert window.image_label.pixmap() is not None and not window.image_label.pixmap().isNull()
    window.sample_list.setCurrentRow(3)
    assert not window.image_label.pixmap().isNull()
