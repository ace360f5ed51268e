"""Dense scenes (issue 17, point 3) on the real canvas, offscreen: a sample read again after one
edit repaints only the changed labels' boxes, and the layer still equals a full re-render pixel
for pixel; its undo restores the pixels; the grid-indexed hit-test names the same label as the
brute-force scan over every instance."""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import pytest
from PySide6.QtGui import QImage

from maskreview.gui.canvas import overlay as ov

H, W = 180, 260


def _blob(cx: int, cy: int, rx: int, ry: int, angle: float = 0.0) -> tuple[int, int, np.ndarray]:
    """An ellipse as ``(x0, y0, box mask)``; the box may stick out of the image."""
    size = 2 * max(rx, ry) + 3
    canvas = np.zeros((size, size), np.uint8)
    cv2.ellipse(canvas, (size // 2, size // 2), (rx, ry), angle, 0, 360, 1, -1)
    ys, xs = np.nonzero(canvas)
    y0, x0 = ys.min(), xs.min()
    mask = canvas[y0:ys.max() + 1, x0:xs.max() + 1].astype(bool)
    return cx - size // 2 + x0, cy - size // 2 + y0, mask


def _scene() -> dict[str, list[ov.Instance]]:
    """Touching and overlapping cells in two fields, some cut by the image border, one box-only
    label and one large label under many others, in classes that give them different colours."""
    rng = np.random.default_rng(7)
    gt, pred = [], []
    for k in range(36):
        r, c = divmod(k, 9)
        cx, cy = 10 + c * 30 + int(rng.integers(-4, 5)), 12 + r * 48 + int(rng.integers(-4, 5))
        x0, y0, m = _blob(cx, cy, int(rng.integers(14, 22)), int(rng.integers(12, 26)), float(rng.uniform(0, 180)))
        label = ("cell", "nucleus", "debris")[k % 3]
        gt.append(ov.Instance("ground_truth", f"g{k}", label, None, x0, y0, m.shape[1], m.shape[0], m))
        x0, y0, m = _blob(cx + 3, cy - 2, int(rng.integers(12, 20)), int(rng.integers(12, 22)), float(rng.uniform(0, 180)))
        pred.append(ov.Instance("predictions", f"p{k}", label, float(rng.uniform(0.55, 1.0)), x0, y0,
                                m.shape[1], m.shape[0], m))
    x0, y0, m = _blob(130, 90, 100, 70)
    gt.insert(3, ov.Instance("ground_truth", "big", "cell", None, x0, y0, m.shape[1], m.shape[0], m))
    pred.append(ov.Instance("predictions", "boxonly", "debris", 0.9, 200, 150, 40, 45, None))
    pred.append(ov.Instance("predictions", "low", "cell", 0.2, 100, 60, 30, 30, np.ones((30, 30), bool)))  # hidden
    return {"ground_truth": gt, "predictions": pred}


def _fresh(fields: dict) -> dict:
    """The same labels as new objects and copied masks: the sample read again from the database."""
    return {n: [replace(i, mask=None if i.mask is None else i.mask.copy(), _area=None, _edges=None) for i in insts]
            for n, insts in fields.items()}


def _layer(canvas, name: str) -> np.ndarray:
    image = canvas.layer_images[name]
    return np.frombuffer(image.constBits(), np.uint8).reshape(image.height(), image.width(), 4).copy()


def _full_render(canvas, name: str) -> np.ndarray:
    """The field's layer rendered from scratch for what the canvas shows now."""
    insts = canvas.visible_instances(name)
    s = canvas.style
    return ov.render_layer(insts, [canvas.color_of(i) for i in insts], H, W, fill_alpha=s.opacity,
                           fills=s.fills, contours=s.contours and not canvas.vector_mode())


def _screen(canvas) -> np.ndarray:
    """What the canvas draws in its viewport (not the legend, a child of the viewport, over it)."""
    from PySide6.QtCore import QPoint
    from PySide6.QtGui import QRegion
    from PySide6.QtWidgets import QWidget

    image = QImage(canvas.viewport().size(), QImage.Format.Format_RGB888)
    canvas.viewport().render(image, QPoint(), QRegion(), QWidget.RenderFlag.DrawWindowBackground)
    arr = np.frombuffer(image.constBits(), np.uint8).reshape(image.height(), image.bytesPerLine())
    return arr[:, :image.width() * 3].copy()


def _shown_canvas(qtbot, width: int, height: int, **style):
    from maskreview.gui.canvas import ImageCanvas

    view = ImageCanvas()
    qtbot.addWidget(view)
    view.resize(width, height)
    view.show()
    qtbot.waitExposed(view)
    view.set_classes(["cell", "nucleus", "debris"])
    view.set_style(**style)
    return view


@pytest.fixture
def canvas(qtbot):
    return _shown_canvas(qtbot, 600, 420, labels=False)


IMAGE = np.full((H, W, 3), 60, np.uint8)


def _show(canvas, fields, keep_view=False) -> None:
    from maskreview.gui.canvas.sample import SampleData

    canvas.set_sample(SampleData("dense", "dense.png", IMAGE, None, H, W, fields), keep_view=keep_view)


def _grow(inst: ov.Instance) -> ov.Instance:
    """A brush stroke on the instance's right edge: a wider box and more pixels."""
    grown = np.zeros((inst.h + 6, inst.w + 10), bool)
    grown[:inst.h, :inst.w] = inst.full_mask()
    cv2.circle(grown.view(np.uint8), (inst.w, inst.h // 2), 7, 1, -1)
    return replace(inst, w=inst.w + 10, h=inst.h + 6, mask=grown, _area=None, _edges=None)


EDITS = {
    "mask grown": lambda f: f["ground_truth"].__setitem__(10, _grow(f["ground_truth"][10])),
    "prediction at the border grown": lambda f: f["predictions"].__setitem__(0, _grow(f["predictions"][0])),
    "label under its neighbours cut": lambda f: f["ground_truth"].__setitem__(  # later labels overlap it
        5, replace(f["ground_truth"][5], mask=f["ground_truth"][5].mask & (np.arange(f["ground_truth"][5].w) % 9 > 2))),
    "deleted": lambda f: f["predictions"].pop(12),
    "added on top": lambda f: f["predictions"].append(_grow(replace(f["predictions"][5], id="new"))),
    "relabelled (another colour)": lambda f: f["ground_truth"].__setitem__(20, replace(f["ground_truth"][20], label="debris")),
    "moved": lambda f: f["predictions"].__setitem__(7, replace(f["predictions"][7], x0=f["predictions"][7].x0 + 9)),
    "prediction became ground truth (fill style)": lambda f: f["predictions"].__setitem__(
        9, replace(f["predictions"][9], score=None)),
}


@pytest.mark.parametrize("what", list(EDITS))
def test_one_edit_repaints_its_boxes_and_equals_a_full_render(canvas, what):
    fields = _scene()
    _show(canvas, _fresh(fields))
    before = {n: _layer(canvas, n) for n in fields}
    layers = {n: canvas._layer_cache[next(k for k in canvas._layer_cache if k[4] == n)][0] for n in fields}  # noqa: SLF001
    edited = _fresh(fields)
    EDITS[what](edited)
    _show(canvas, edited, keep_view=True)
    changed = 0
    for name in fields:
        layer = canvas._layer_cache[next(k for k in canvas._layer_cache if k[4] == name)][0]  # noqa: SLF001
        assert layer is layers[name]  # patched in place, not rendered again
        now = _layer(canvas, name)
        np.testing.assert_array_equal(now, _full_render(canvas, name))
        if not np.array_equal(now, before[name]):
            changed += 1
            area = sum((x1 - x0) * (y1 - y0) for x0, y0, x1, y1 in layer.repainted)
            assert 0 < area < H * W / 4, layer.repainted  # only the edited label's boxes
            outside = np.ones((H, W), bool)
            for x0, y0, x1, y1 in layer.repainted:
                outside[y0:y1, x0:x1] = False
            np.testing.assert_array_equal(now[outside], before[name][outside])
        else:
            assert layer.repainted == []
    assert changed == 1


def test_undo_restores_the_pixels_on_screen(canvas):
    fields = _scene()
    _show(canvas, _fresh(fields))
    canvas.set_zoom(2.0)
    layers, screen = {n: _layer(canvas, n) for n in fields}, _screen(canvas)
    edited = _fresh(fields)
    EDITS["mask grown"](edited)
    EDITS["deleted"](edited)
    _show(canvas, edited, keep_view=True)
    assert not np.array_equal(_screen(canvas), screen)
    _show(canvas, _fresh(fields), keep_view=True)  # the undo: the labels as they were, read again
    for name in fields:
        np.testing.assert_array_equal(_layer(canvas, name), layers[name])
    np.testing.assert_array_equal(_screen(canvas), screen)


def test_a_style_change_then_an_edit_still_equals_a_full_render(canvas):
    fields = _scene()
    _show(canvas, _fresh(fields))
    canvas.set_style(conf_threshold=0.8)  # fewer predictions: another cached layer
    edited = _fresh(fields)
    EDITS["moved"](edited)
    _show(canvas, edited, keep_view=True)
    canvas.set_style(conf_threshold=0.5)  # back to the first layer, which has not seen the edit
    for name in fields:
        np.testing.assert_array_equal(_layer(canvas, name), _full_render(canvas, name))


def _brute_force(canvas, x: float, y: float) -> list:
    return [i for name in reversed(canvas.fields()) for i in reversed(canvas.visible_instances(name)) if i.contains(x, y)]


def test_indexed_hit_test_names_the_brute_force_label_everywhere(canvas):
    fields = _scene()
    _show(canvas, _fresh(fields))
    assert len(canvas.visible_instances("predictions")) == len(fields["predictions"]) - 1  # "low" is hidden
    overlapping = 0
    for y in np.arange(-2.5, H + 2, 1.0):
        for x in np.arange(-2.5, W + 2, 1.0):
            want = _brute_force(canvas, x, y)
            got = canvas.instances_at(x, y)
            assert got == want, (x, y)
            assert canvas.instance_at(x, y) is (want[0] if want else None), (x, y)
            overlapping += len(want) > 1
    assert overlapping > 2000  # the scene does overlap
    x, y = 101.5, 61.5  # the hidden low-score label is never hit
    assert all(i.id != "low" for i in canvas.instances_at(x, y))
    hit = canvas.instance_at(215.5, 170.5)
    assert hit is not None and hit.id == "boxonly"  # a box-only label is hit on its whole box


def test_hit_test_follows_an_edit_and_a_threshold(canvas):
    fields = _scene()
    _show(canvas, _fresh(fields))
    edited = _fresh(fields)
    EDITS["moved"](edited)
    EDITS["deleted"](edited)
    _show(canvas, edited, keep_view=True)
    canvas.set_style(conf_threshold=0.75)
    for y in np.arange(0.5, H, 2.0):
        for x in np.arange(0.5, W, 2.0):
            assert canvas.instances_at(x, y) == _brute_force(canvas, x, y), (x, y)


def test_zoomed_in_layers_render_the_tiles_in_view_and_equal_a_full_render(canvas):
    from maskreview.gui.canvas.layers import TILE

    big_h, big_w = 3 * TILE, 3 * TILE
    rng = np.random.default_rng(2)
    insts = []
    for k in range(60):
        x0, y0, m = _blob(int(rng.integers(0, big_w)), int(rng.integers(0, big_h)), 30, 22, float(k * 7))
        insts.append(ov.Instance("ground_truth", f"g{k}", "cell", None, x0, y0, m.shape[1], m.shape[0], m))
    from maskreview.gui.canvas.sample import SampleData

    image = np.full((big_h, big_w, 3), 60, np.uint8)
    canvas.set_sample(SampleData("big", "big.png", image, None, big_h, big_w, {"ground_truth": insts}))
    canvas.set_zoom(8.0)  # contours as vectors: the layer is fills only, rendered as tiles come into view
    canvas.centerOn(TILE * 1.5, TILE * 1.5)
    canvas.viewport().grab()
    layer = canvas._layer_items["ground_truth"].layer  # noqa: SLF001
    assert layer.lazy and 0 < layer._rendered.sum() < layer._rendered.size  # noqa: SLF001 - only what was in view
    canvas.ensure_layers(canvas.sceneRect())
    full = ov.render_layer(insts, [canvas.color_of(i) for i in insts], big_h, big_w, fill_alpha=canvas.style.opacity,
                           contours=False)
    image = canvas.layer_images["ground_truth"]
    got = np.frombuffer(image.constBits(), np.uint8).reshape(big_h, big_w, 4)
    np.testing.assert_array_equal(got, full)


def _stroke(tool, points) -> None:
    """A left-button drag through ``points`` (image coordinates), as the canvas hands it to a tool."""
    from PySide6.QtCore import QEvent, QPointF, Qt
    from PySide6.QtGui import QMouseEvent

    left, none = Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton
    for k, (x, y) in enumerate(points):
        kind = QEvent.Type.MouseButtonPress if k == 0 else QEvent.Type.MouseMove
        event = QMouseEvent(kind, QPointF(x, y), QPointF(x, y), left, left, Qt.KeyboardModifier.NoModifier)
        (tool.press if k == 0 else tool.move)(QPointF(x, y), event)
    event = QMouseEvent(QEvent.Type.MouseButtonRelease, QPointF(x, y), QPointF(x, y), left, none,
                        Qt.KeyboardModifier.NoModifier)
    tool.release(QPointF(x, y), event)


def test_a_stored_brush_edit_and_its_undo_repaint_in_place(qtbot, fo, demo_coco, tmp_path):
    """Through the database, as the window does it: the edit is written, the sample read again
    (``refresh_sample``: ``load_sample`` then ``set_sample(keep_view=True)``), the layer patched in
    place equals a full render, and the undo gives back the pixels from before, on screen too."""
    from PySide6.QtGui import QUndoStack

    from maskreview.core.editing.session import EditSession
    from maskreview.core.sources import open_source
    from maskreview.gui.canvas import ImageCanvas, load_sample
    from maskreview.gui.canvas.edit_tools import BrushTool
    from maskreview.gui.commands import EditController

    ds = open_source(demo_coco, name=f"dense-{tmp_path.name}")
    session = EditSession(ds, journal_root=tmp_path / "journal")
    controller = EditController(session, QUndoStack())
    canvas = ImageCanvas()
    qtbot.addWidget(canvas)
    canvas.resize(400, 400)
    canvas.show()
    sid = ds.first().id
    canvas.set_sample(load_sample(ds, sid, ["ground_truth"]))
    canvas.set_zoom(2.0)
    layer = canvas._layer_items["ground_truth"].layer  # noqa: SLF001
    before, screen = _layer(canvas, "ground_truth"), _screen(canvas)
    inst = canvas.visible_instances("ground_truth")[0]
    canvas.select_instance(inst)
    ops = []
    brush = BrushTool(ops.append, size=5)
    canvas.set_tool(brush)
    _stroke(brush, [(inst.x0 + inst.w + 1.5, inst.y0 + 2.5), (inst.x0 + inst.w + 6.5, inst.y0 + 2.5)])
    canvas.set_tool(None)
    assert len(ops) == 1
    controller.apply(ops[0])
    canvas.set_sample(load_sample(ds, sid, ["ground_truth"]), keep_view=True)
    assert canvas._layer_items["ground_truth"].layer is layer  # noqa: SLF001 - patched, not rendered anew
    assert 0 < sum((x1 - x0) * (y1 - y0) for x0, y0, x1, y1 in layer.repainted) < layer.height * layer.width / 4
    edited = _layer(canvas, "ground_truth")
    assert not np.array_equal(edited, before)
    insts = canvas.visible_instances("ground_truth")
    full = ov.render_layer(insts, [canvas.color_of(i) for i in insts], layer.height, layer.width,
                           fill_alpha=canvas.style.opacity)
    np.testing.assert_array_equal(edited, full)
    controller.stack.undo()
    canvas.set_sample(load_sample(ds, sid, ["ground_truth"]), keep_view=True)
    np.testing.assert_array_equal(_layer(canvas, "ground_truth"), before)
    canvas.select_instance(None)
    np.testing.assert_array_equal(_screen(canvas), screen)
    session.close()


@pytest.mark.parametrize("size", [(180, 260), (1100, 1337)])
def test_mip_levels_patched_where_the_layer_changed_equal_levels_made_anew(size):
    """A zoomed-out frame draws a mip level; after an edit the levels are patched only in the
    repainted rectangles, and must equal levels made from the edited layer (odd sizes too)."""
    from maskreview.gui.canvas.layers import Mips
    from PySide6.QtGui import QImage

    h, w = size
    rng = np.random.default_rng(1)
    base = rng.integers(0, 255, (h, w, 4), dtype=np.uint8)
    mips = Mips(base, QImage.Format.Format_ARGB32_Premultiplied)
    before = mips.qimage(3)
    rects = [(5, 7, 61, 40), (w - 33, h - 21, w, h)]
    for x0, y0, x1, y1 in rects:
        base[y0:y1, x0:x1] = rng.integers(0, 255, (y1 - y0, x1 - x0, 4), dtype=np.uint8)
    mips.invalidate(rects)
    fresh = Mips(base.copy(), QImage.Format.Format_ARGB32_Premultiplied)
    for level in (3, 1, 2):
        np.testing.assert_array_equal(_bits(mips.qimage(level)), _bits(fresh.qimage(level)))
    assert mips.qimage(3) is before  # patched in place, not made anew
    assert fresh.qimage(1).width() == len(range(1, w, 2)) and fresh.qimage(2).height() == len(range(2, h, 4))


def _bits(image) -> np.ndarray:
    return np.frombuffer(image.constBits(), np.uint8).reshape(image.height(), image.bytesPerLine())[:, :image.width() * 4].copy()


def test_zoomed_out_the_screen_is_the_composite_sampled_and_follows_edits(qtbot):
    """Zoomed out past half size the canvas draws mip levels; what is on screen is the full-size
    composite's pixels a scaled draw samples (not another scale or place, not missing a layer)."""
    from maskreview.gui.canvas.sample import SampleData

    big = 2048
    rng = np.random.default_rng(4)
    gt, pred = [], []
    for k in range(400):
        x0, y0, m = _blob(int(rng.integers(0, big)), int(rng.integers(0, big)), int(rng.integers(10, 40)),
                          int(rng.integers(10, 40)), float(rng.uniform(0, 180)))
        label = ("cell", "nucleus", "debris")[k % 3]
        field, score = ("ground_truth", None) if k % 2 else ("predictions", 0.9)
        (gt if k % 2 else pred).append(ov.Instance(field, f"i{k}", label, score, x0, y0, m.shape[1], m.shape[0], m))
    image = np.ascontiguousarray(np.broadcast_to(np.linspace(20, 200, big, dtype=np.uint8)[None, :, None], (big, big, 3)))
    view = _shown_canvas(qtbot, 520, 520, labels=False, boxes=False)
    view.set_sample(SampleData("big", "big.png", image, None, big, big, {"ground_truth": gt, "predictions": pred}))
    view.set_zoom(0.25)

    def shown_and_expected():
        screen = _screen(view).reshape(view.viewport().height(), view.viewport().width(), 3).astype(float)
        top_left = view.mapFromScene(0, 0)
        y, x = max(top_left.y(), 0), max(top_left.x(), 0)
        shown = screen[y:y + 500, x:x + 500]
        comp = image.astype(float)
        for name in view.fields():
            if name not in view.style.hidden_fields:
                layer = _layer(view, name).astype(float)
                comp = layer[..., 2::-1] + comp * (1 - layer[..., 3:] / 255)  # premultiplied BGRA over RGB
        y, x = max(-top_left.y(), 0), max(-top_left.x(), 0)
        return shown, comp[2::4, 2::4][y:y + shown.shape[0], x:x + shown.shape[1]]

    shown, ref = shown_and_expected()
    assert view._image_item.mips._levels  # noqa: SLF001 - a level was drawn
    assert np.abs(shown - ref).mean() < 3
    plain = image[2::4, 2::4][:shown.shape[0], :shown.shape[1]].astype(float)
    assert np.abs(shown - plain).mean() > 6  # the layers are on it
    edited = {"ground_truth": [replace(i, mask=np.ones_like(i.mask)) if k < 60 else i for k, i in enumerate(gt)],
              "predictions": pred}  # 60 labels filled in: the composite is made again
    view.set_sample(SampleData("big", "big.png", image, None, big, big, edited), keep_view=True)
    again, ref = shown_and_expected()
    assert np.abs(again - ref).mean() < 3 and np.abs(again - shown).mean() > 0.5
    view.set_style(hidden_fields={"predictions"})
    hidden, ref = shown_and_expected()
    assert np.abs(hidden - ref).mean() < 3 and np.abs(hidden - again).mean() > 3


def _cells(rng, big: int, count: int = 300) -> tuple[dict, np.ndarray]:
    """``count`` cell-like blobs, ground truth and predictions in turn, on a ``big``² noise image."""
    fields = {"ground_truth": [], "predictions": []}
    for k in range(count):
        x0, y0, m = _blob(int(rng.integers(0, big)), int(rng.integers(0, big)), int(rng.integers(8, 30)),
                          int(rng.integers(8, 30)), float(rng.uniform(0, 180)))
        name, score = ("ground_truth", None) if k % 2 else ("predictions", 0.9)
        fields[name].append(ov.Instance(name, f"i{k}", ("cell", "nucleus", "debris")[k % 3], score, x0, y0,
                                        m.shape[1], m.shape[0], m))
    return fields, rng.integers(0, 255, (big, big, 3), dtype=np.uint8)


def test_the_zoomed_out_composite_patched_after_edits_equals_one_made_anew(qtbot):
    """After an edit the zoomed-out composite (image and layer mip levels in one) is made again
    only where the layers changed; it must equal a composite made from scratch, edit after edit."""
    from maskreview.gui.canvas.sample import SampleData

    big = 2048
    rng = np.random.default_rng(9)
    fields, image = _cells(rng, big)
    view = _shown_canvas(qtbot, 520, 520, labels=False, boxes=False)
    view.set_sample(SampleData("big", "big.png", image, None, big, big, fields))
    view.set_zoom(0.25)
    view.viewport().grab()
    item = view._image_item  # noqa: SLF001
    level = next(iter(item._composites))  # noqa: SLF001
    first = item._composites[level][1]  # noqa: SLF001
    for k, name in [(3, "ground_truth"), (10, "predictions"), (0, "ground_truth")]:
        insts = list(fields[name])
        i = insts[k]
        grown = np.zeros((i.h + 20, i.w + 20), bool)
        grown[10:-10, 10:-10] = i.mask
        grown[:10, :] = True  # a stroke above it, outside its old box
        insts[k] = replace(i, x0=i.x0 - 10, y0=i.y0 - 10, w=i.w + 20, h=i.h + 20, mask=grown, _area=None, _edges=None)
        fields = {**fields, name: insts}
        view.set_sample(SampleData("big", "big.png", image, None, big, big, fields), keep_view=True)
        view.viewport().grab()
        patched = item._composites[level][1]  # noqa: SLF001
        assert patched is first  # made again in place, where it changed
        item._composites.clear()  # noqa: SLF001
        anew = item._composite(level)  # noqa: SLF001
        np.testing.assert_array_equal(_bits(patched), _bits(anew))
        item._composites[level] = (item._composites[level][0], patched)  # noqa: SLF001
        first = patched


@pytest.mark.parametrize("zoom", [1.0, 1.25])
def test_from_one_to_one_up_one_full_size_composite_is_drawn_and_patched_after_edits(qtbot, zoom):
    """At 1:1 and zoomed in (below vector zoom) the image's item draws one full-size composite of
    the image and the layers over it, made once and patched in place where an edit changed the
    layers: equal to one made anew, and what is on screen is image and layers blended."""
    from maskreview.gui.canvas.sample import SampleData

    big = 1200
    rng = np.random.default_rng(12)
    fields, image = _cells(rng, big, count=200)
    view = _shown_canvas(qtbot, 420, 360, labels=False, boxes=False)
    view.set_sample(SampleData("big", "big.png", image, None, big, big, fields))
    view.set_zoom(zoom)
    view.centerOn(big / 2, big / 2)
    view.viewport().grab()
    item = view._image_item  # noqa: SLF001
    assert 0 not in item._composites  # noqa: SLF001 - new layers: drawn as they are; painted again, composited on the pool

    def composited() -> bool:
        view.viewport().grab()
        return 0 in item._composites  # noqa: SLF001 - drawn from the full-size composite

    qtbot.waitUntil(composited)
    first = item._composites[0][1]  # noqa: SLF001
    for k, name in [(3, "ground_truth"), (10, "predictions")]:
        insts = list(fields[name])
        i = insts[k]
        insts[k] = replace(i, mask=np.ones_like(i.mask), _area=None, _edges=None)
        fields = {**fields, name: insts}
        view.set_sample(SampleData("big", "big.png", image, None, big, big, fields), keep_view=True)
        view.viewport().grab()
        patched = item._composites[0][1]  # noqa: SLF001
        assert patched is first  # patched in place, where it changed
        item._composites.clear()  # noqa: SLF001
        anew = item._composite(0)  # noqa: SLF001
        np.testing.assert_array_equal(_bits(patched), _bits(anew))
        item._composites[0] = (item._composites[0][0], patched)  # noqa: SLF001
    if zoom == 1.0:  # (enlarged: test_zoomed_in_the_screen_is_image_and_layers_blended_then_enlarged)
        comp = image.astype(float)
        for name in view.fields():
            layer = _layer(view, name).astype(float)
            comp = layer[..., 2::-1] + comp * (1 - layer[..., 3:] / 255)  # premultiplied BGRA over RGB
        screen = _screen(view).reshape(view.viewport().height(), view.viewport().width(), 3).astype(float)
        x0, y0 = int(view.mapToScene(0, 0).x()) + 1, int(view.mapToScene(0, 0).y()) + 1
        at = view.mapFromScene(x0, y0)
        shown = screen[at.y():at.y() + 200, at.x():at.x() + 200]
        assert np.abs(shown - comp[y0:y0 + 200, x0:x0 + 200]).max() <= 2


def test_mip_levels_made_ahead_equal_levels_made_anew_after_edits_meanwhile(qtbot):
    """A paint zoomed out makes the next zoom step's mip levels ahead on the pool; one made while
    the layer changed, or before a change, must show the changed pixels when drawn (its patches
    are kept for it)."""
    from maskreview.gui.canvas.layers import Mips
    from maskreview.gui.canvas.sample import SampleData

    rng = np.random.default_rng(12)
    base = rng.integers(0, 255, (2048, 2048, 4), dtype=np.uint8)
    mips = Mips(base, QImage.Format.Format_ARGB32_Premultiplied)
    mips.prefetch(1, 2, 3)
    for k in range(6):  # the base changes while (and after) the levels are made on the pool
        x0, y0 = int(rng.integers(0, 1900)), int(rng.integers(0, 1900))
        base[y0:y0 + 100, x0:x0 + 120] = rng.integers(0, 255, (100, 120, 4), dtype=np.uint8)
        mips.invalidate([(x0, y0, x0 + 120, y0 + 100)])
    fresh = Mips(base.copy(), QImage.Format.Format_ARGB32_Premultiplied)
    for level in (1, 2, 3):
        np.testing.assert_array_equal(_bits(mips.qimage(level)), _bits(fresh.qimage(level)))

    big = 2048
    fields, image = _cells(rng, big)
    view = _shown_canvas(qtbot, 520, 520, labels=False, boxes=False)
    view.set_sample(SampleData("big", "big.png", image, None, big, big, fields))
    view.set_zoom(0.25)
    view.viewport().grab()  # level 2 drawn: levels 1 and 3 are made ahead
    item = view._image_item  # noqa: SLF001
    assert {1, 3} <= set(item.mips._levels) | set(item.mips._pending)  # noqa: SLF001
    insts = list(fields["ground_truth"])
    insts[3] = replace(insts[3], mask=np.ones_like(insts[3].mask), _area=None, _edges=None)
    view.set_sample(SampleData("big", "big.png", image, None, big, big, {**fields, "ground_truth": insts}), keep_view=True)
    view.set_zoom(0.25 * 1.6)  # the next step out of level 2: level 1
    view.viewport().grab()
    assert 1 in item._composites  # noqa: SLF001 - drawn from level 1
    for name in view.fields():  # the levels made ahead show the edit made after them
        np.testing.assert_array_equal(_bits(view._layer_items[name].mips.qimage(1)),  # noqa: SLF001
                                      _bits(Mips(_layer(view, name), QImage.Format.Format_ARGB32_Premultiplied).qimage(1)))


def test_vectorised_boxes_equal_detection_pixel_box():
    """The boxes of raw detections computed for many at once are ``detection_pixel_box``'s, and a
    broken box still raises its message."""
    from maskreview.core.masks import MaskError, detection_pixel_box
    from maskreview.gui.queries import RawDetection

    rng = np.random.default_rng(2)
    docs = []
    for k in range(300):
        x, y = (float(v) for v in rng.uniform(-0.2, 1.0, 2))
        if k % 5 == 0:
            x = round(x * 640 * 2) / 2 / 640  # exactly half a pixel: rounds up
        w, h = (float(v) for v in rng.uniform(0.0, 0.4, 2))
        doc = {"_id": k, "label": "cell", "bounding_box": [x, y, w, h] if k % 7 else [0, 1, 1, 0]}
        docs.append(doc)
    dets = [RawDetection(d) for d in docs]
    assert ov._pixel_boxes(dets, 480, 640) == [detection_pixel_box(d, 480, 640) for d in dets]  # noqa: SLF001
    bad = dets[:3] + [RawDetection({"_id": 1, "label": "cell", "bounding_box": [0.1, float("nan"), 0.2, 0.2]})]
    with pytest.raises(MaskError, match="finite"):
        ov._pixel_boxes(bad, 480, 640)  # noqa: SLF001


def test_a_sample_read_again_keeps_its_unchanged_masks_and_decodes_the_changed_one(fo, demo_coco, tmp_path):
    """``read_samples`` twice: the same (read-only) mask arrays for labels whose stored bytes did
    not change, a new one for the label that was written in between."""
    from maskreview.core.sources import open_source
    from maskreview.core.store.codec import encode_mask
    from maskreview.gui.queries import read_samples

    ds = open_source(demo_coco, name=f"dense-masks-{tmp_path.name}")
    sid = ds.first().id
    first = read_samples(ds, [sid], ["ground_truth"])[sid].labels["ground_truth"].detections
    sample = ds[sid]
    det = sample.ground_truth.detections[0]
    det.mask = ~det.mask
    sample.save()
    again = read_samples(ds, [sid], ["ground_truth"])[sid].labels["ground_truth"].detections
    assert again[0].mask is not first[0].mask and np.array_equal(again[0].mask, ~first[0].mask)
    assert all(a.mask is b.mask for a, b in zip(first[1:], again[1:])) and len(first) > 1
    assert not again[1].mask.flags.writeable
    assert encode_mask(again[1].mask)  # usable as before


def test_with_no_sample_the_canvas_says_what_is_happening(qtbot):
    """The first run showed a blank white canvas for a minute while the demo was written."""
    view = _shown_canvas(qtbot, 500, 300)

    def dark_pixels() -> int:
        return int((_screen(view) < 150).sum())

    assert dark_pixels() == 0  # nothing to say: blank
    view.set_empty_text("Opening the dataset…")
    qtbot.waitUntil(lambda: dark_pixels() > 20, timeout=5000)


@pytest.mark.parametrize("zoom", [2.0, 4.0])
def test_zoomed_in_the_screen_is_image_and_layers_blended_then_enlarged(qtbot, zoom):
    """Zoomed in, the image and the layers over it are blended at full size in the exposed part
    and scaled once: each image pixel is a zoom x zoom block of its blended colour (2x: layers with
    contours; 4x: lazily rendered layers, contours as vectors, turned off here)."""
    from maskreview.gui.canvas.sample import SampleData

    rng = np.random.default_rng(8)
    image = rng.integers(0, 255, (H, W, 3), dtype=np.uint8)
    view = _shown_canvas(qtbot, 360, 300, labels=False, boxes=False, contours=zoom < 4)
    view.set_sample(SampleData("z", "z.png", image, None, H, W, _scene()))
    view.set_zoom(zoom)
    view.centerOn(W / 2, H / 2)
    screen = _screen(view).reshape(view.viewport().height(), view.viewport().width(), 3).astype(int)
    comp = image.astype(float)
    for name in view.fields():
        layer = _layer(view, name).astype(float)
        comp = layer[..., 2::-1] + comp * (1 - layer[..., 3:] / 255)  # premultiplied BGRA over RGB
    z = int(zoom)
    x0, y0 = int(view.mapToScene(0, 0).x()) + 1, int(view.mapToScene(0, 0).y()) + 1  # whole image pixels in view
    at = view.mapFromScene(x0, y0)
    n_x, n_y = (view.viewport().width() - at.x()) // z - 1, (view.viewport().height() - at.y()) // z - 1
    shown = screen[at.y():at.y() + n_y * z, at.x():at.x() + n_x * z]
    expected = np.repeat(np.repeat(comp[y0:y0 + n_y, x0:x0 + n_x], z, axis=0), z, axis=1)
    assert np.abs(shown - expected).max() <= 2
    assert np.abs(shown - np.repeat(np.repeat(image[y0:y0 + n_y, x0:x0 + n_x], z, 0), z, 1)).mean() > 3  # layers on it
