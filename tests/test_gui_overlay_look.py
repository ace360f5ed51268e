"""Ground truth and predictions look different in every colour mode, with a legend; label tags
are drawn as chips (issue 14, point 4). A sample is rendered offscreen and its pixels compared."""

from __future__ import annotations

import numpy as np
import pytest
from helpers_gui import shown
from PySide6.QtGui import QImage

from maskreview.gui.canvas import overlay as ov

H = W = 120
BG = 90


def _square(field: str, x0: int, score, label: str = "square", **kw) -> ov.Instance:
    return ov.Instance(field, f"{field}-{x0}", label, score, x0, 20, 40, 40, np.ones((40, 40), bool), **kw)


def _pair():
    """The same class once as ground truth, once as a prediction, side by side."""
    return _square("ground_truth", 10, None, eval="tp"), _square("predictions", 70, 0.9, eval="tp")


def _rgb(image: QImage) -> np.ndarray:
    image = image.convertToFormat(QImage.Format.Format_RGB888)
    arr = np.frombuffer(image.constBits(), np.uint8).reshape(image.height(), image.bytesPerLine())
    return arr[:, :image.width() * 3].reshape(image.height(), image.width(), 3).copy()


@pytest.fixture
def canvas(qtbot):
    from maskreview.gui.canvas import ImageCanvas
    from maskreview.gui.canvas.sample import SampleData

    view = shown(qtbot, ImageCanvas(), (400, 300))
    gt, pred = _pair()
    data = SampleData("s", "x.png", np.full((H, W, 3), BG, np.uint8), None, H, W,
                      {"ground_truth": [gt], "predictions": [pred]})
    view.set_classes(["square"])
    view.set_sample(data)
    view.set_style(labels=False, boxes=False)
    view.set_zoom(1.0)
    return view


def _crops(canvas) -> tuple[np.ndarray, np.ndarray]:
    """The ground truth's and the prediction's 40 x 40 squares as the canvas draws them (1:1; not
    the legend, a child of the viewport, over them)."""
    from PySide6.QtCore import QPoint
    from PySide6.QtGui import QRegion
    from PySide6.QtWidgets import QWidget

    drawn = QImage(canvas.viewport().size(), QImage.Format.Format_RGB888)
    canvas.viewport().render(drawn, QPoint(), QRegion(), QWidget.RenderFlag.DrawWindowBackground)
    image = _rgb(drawn)
    out = []
    for inst in (canvas.data.fields["ground_truth"][0], canvas.data.fields["predictions"][0]):
        top_left = canvas.mapFromScene(inst.x0, inst.y0)
        out.append(image[top_left.y():top_left.y() + 40, top_left.x():top_left.x() + 40].astype(int))
    return out[0], out[1]


@pytest.mark.parametrize("mode", ["class", "field", "eval"])
def test_ground_truth_and_prediction_differ_on_screen_in_every_colour_mode(canvas, qtbot, mode):
    canvas.set_style(color_mode=mode)
    gt, pred = _crops(canvas)
    border = np.zeros((40, 40), bool)
    border[[0, -1], :] = border[:, [0, -1]] = True
    inner = np.zeros((40, 40), bool)
    inner[6:-6, 6:-6] = True
    untouched = lambda crop: np.all(np.abs(crop - BG) <= 2, axis=-1)  # noqa: E731 - background shows through
    # the ground truth's outline is solid (one colour all round); the prediction's dashed: between
    # the dashes its border shows the fill
    assert not untouched(gt)[border].any() and np.ptp(gt[border], axis=0).max() <= 2
    fill = pred[20, 20]
    gaps = np.all(np.abs(pred[border] - fill) <= 2, axis=-1)
    assert 0.3 < gaps.mean() < 0.7
    # inside: the ground truth is hatched (background between the stripes), the prediction filled evenly
    assert 0.4 < untouched(gt)[inner].mean() < 0.9 and not untouched(pred)[inner].any()
    assert np.ptp(pred[inner], axis=0).max() <= 2  # before: both filled alike in class and eval mode


def test_vector_contours_and_boxes_use_solid_and_dashed_pens(canvas, qtbot):
    from PySide6.QtCore import Qt

    pens = []
    original = canvas._pen

    def recording(rgb, width, style=Qt.PenStyle.SolidLine):
        pens.append(style)
        return original(rgb, width, style)

    canvas._pen = recording
    canvas.set_style(boxes=True)
    canvas.resize(800, 800)
    canvas.set_zoom(4.5)  # contours as vector paths, both squares in view
    canvas.centerOn(W / 2, H / 2)
    canvas.viewport().grab()
    assert Qt.PenStyle.DashLine in pens and Qt.PenStyle.SolidLine in pens
    gt, pred = canvas.data.fields["ground_truth"][0], canvas.data.fields["predictions"][0]
    assert not ov.is_prediction(gt) and ov.is_prediction(pred)


def test_legend_names_both_looks_and_the_colours(canvas, qtbot):
    from maskreview.gui.canvas.legend import NO_EVAL_HINT, legend_rows

    texts = [r.text for r in legend_rows(canvas)]
    assert any(t.startswith("ground_truth: solid") for t in texts)
    assert any(t.startswith("predictions: dashed") for t in texts) and "square" in texts
    assert canvas.legend.isVisible() and canvas.legend.geometry().right() <= canvas.viewport().geometry().right()
    canvas.set_style(color_mode="eval")
    assert "true positive" in [r.text for r in canvas.legend.rows]
    for insts in canvas.data.fields.values():
        for inst in insts:
            inst.eval = None
    canvas.invalidate()
    assert [r.text for r in canvas.legend.rows][-1] == NO_EVAL_HINT  # how to run an evaluation


def test_label_tags_are_drawn_as_chips(canvas, qtbot):
    canvas.set_style(labels=True)
    canvas.set_zoom(2.0)
    plain = _rgb(canvas.viewport().grab().toImage())
    canvas.data.fields["ground_truth"][0].tags = ("fix",)
    canvas.viewport().update()
    tagged = _rgb(canvas.viewport().grab().toImage())
    top_left = canvas.mapFromScene(10, 20)
    changed = np.argwhere(np.any(plain != tagged, axis=-1))
    assert changed.size, "the tag chip is not drawn"
    ys, xs = changed[:, 0], changed[:, 1]
    assert ys.max() < top_left.y() and xs.min() > top_left.x() + 20  # on the label row, right of the class chip


def test_two_labels_on_one_object_get_chips_of_their_own(canvas, qtbot):
    """A kept reviewed label and a new prediction on the same object (boxes a pixel apart): each
    chip is drawn whole, so one label's tags never read as the other's (seen in the real window:
    'circle 0.74 #fp' where #fp belonged to the reviewed circle 0.52 beneath)."""
    gt, pred = canvas.data.fields["ground_truth"][0], canvas.data.fields["predictions"][0]
    pred.x0, pred.y0 = gt.x0 + 1, gt.y0 - 1
    gt.tags = ("fp",)
    canvas.set_style(labels=True, boxes=True)
    canvas.set_zoom(2.0)
    canvas.viewport().repaint()
    rects = canvas.label_chip_rects
    assert set(rects) == {gt.id, pred.id}
    assert not rects[gt.id].intersects(rects[pred.id]), rects
    assert rects[gt.id].top() == canvas.mapFromScene(gt.x0, gt.y0).y() - canvas._chips.height  # drawn first: in place


def test_a_label_new_since_the_last_whole_paint_gets_a_chip_clear_of_the_others(canvas, qtbot):
    """A partial repaint (a patch after a model run's write, a hover) drew the chip of a label it
    had not laid out before at its box's corner, over the chips already there: in the real window
    a new prediction's 'square 0.52' covered the ground truth's 'circle' until the next whole
    paint, which nothing brought."""
    from PySide6.QtCore import QRect

    gt, pred = canvas.data.fields["ground_truth"][0], canvas.data.fields["predictions"][0]
    canvas.set_style(labels=True, boxes=True)
    canvas.set_zoom(2.0)
    canvas.viewport().repaint()  # a whole paint: both laid out
    assert gt.id in canvas.label_chip_rects
    pred.id, pred.x0, pred.y0 = "written-by-the-run", gt.x0 + 2, gt.y0 - 2  # a new label on the same object
    corner = canvas.mapFromScene(gt.x0, gt.y0)
    canvas.viewport().repaint(QRect(corner.x() - 20, corner.y() - 60, 200, 120))  # a partial paint around it
    rects = canvas.label_chip_rects
    assert pred.id in rects, "the new label's chip was not laid out"
    assert not rects[pred.id].intersects(rects[gt.id]), (rects[pred.id], rects[gt.id])


def test_the_legend_moves_off_a_framed_label(canvas, qtbot):
    """Framing a label at the image's top-right corner (the review queue does) puts the legend
    in another corner, clear of the label and its chips; the next sample brings it back."""
    from PySide6.QtCore import QRectF

    pred = canvas.data.fields["predictions"][0]
    pred.x0, pred.y0 = 120 - pred.w, 0  # in the top-right corner of the image
    canvas.set_style(labels=True)
    canvas.resize(400, 300)
    home = canvas.legend.geometry()
    assert canvas.legend.isVisible() and home.right() > canvas.viewport().width() / 2
    canvas.frame_rect(QRectF(pred.x0, pred.y0, pred.w, pred.h))
    label = canvas.mapFromScene(QRectF(pred.x0, pred.y0, pred.w, pred.h)).boundingRect()
    label = label.translated(canvas.viewport().geometry().topLeft()).adjusted(0, -canvas._chips.height, 0, 0)
    assert label.intersects(home), "the label is not under the legend's usual place: the test shows nothing"
    assert not canvas.legend.geometry().intersects(label), (canvas.legend.geometry(), label)
    canvas.set_sample(canvas.data)
    assert canvas.legend.geometry() == home


def test_instances_read_label_tags(fo):
    dets = fo.Detections(detections=[fo.Detection(label="a", bounding_box=[0.1, 0.1, 0.2, 0.2], tags=["fix", "fp"])])
    (inst,) = ov.instances_from_detections("ground_truth", dets, 100, 100)
    assert inst.tags == ("fix", "fp")


def test_framing_a_small_label_keeps_its_surroundings_in_view(canvas):
    """The review queue frames a label: a small one used to fill the view at up to 24x, its
    neighbours and the image around it out of sight. It is now centred with at least 64 image
    pixels around it in view, at most FRAME_MAX_ZOOM x."""
    from PySide6.QtCore import QRectF

    small = QRectF(57, 57, 6, 6)
    canvas.frame_rect(small)
    shown = canvas.mapToScene(canvas.viewport().rect()).boundingRect()
    assert canvas.zoom_level() <= canvas.FRAME_MAX_ZOOM
    assert min(shown.width(), shown.height()) >= 60, shown
    assert abs(shown.center().x() - 60) < 2 and abs(shown.center().y() - 60) < 2, shown
    large = QRectF(10, 20, 100, 80)  # a large one is framed whole, with a margin
    canvas.frame_rect(large)
    shown = canvas.mapToScene(canvas.viewport().rect()).boundingRect()
    assert shown.contains(large)


def test_three_labels_on_one_object_a_few_pixels_apart_get_chips_of_their_own():
    """Seen in the real window (a model run's circle 0.74 and square 0.52 on a ground-truth
    circle, boxes 2-5 px apart): chips were tried a whole chip row at a time above their own
    corner, so one chip covered two tries and the third label's chip was left over the first's."""
    from maskreview.gui.canvas.label_chips import ChipLayout

    layout, h = ChipLayout(12), 12
    placed = [(x, layout.place(x, y, w), w) for x, y, w in ((372, 524, 33), (366, 527, 59), (366, 529, 67))]
    for i, (ax, ay, aw) in enumerate(placed):
        for bx, by, bw in placed[i + 1:]:
            assert not (ax < bx + bw and bx < ax + aw and ay < by + h and by < ay + h), placed
    assert all(524 - top <= ChipLayout.REACH * h for _, top, _ in placed)
