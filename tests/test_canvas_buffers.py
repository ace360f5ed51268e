"""Big layer buffers are handed out again (``gui/canvas/buffers.py``): a new sample's layers take
the memory of layers no one shows or caches any more, cleared, never that of a layer still held."""

from __future__ import annotations

import numpy as np
import pytest

from maskreview.gui.canvas import buffers
from maskreview.gui.canvas import overlay as ov

BIG = 1600  # 10 MB layers: past buffers.MIN_BYTES


@pytest.fixture(autouse=True)
def _own_buffers(monkeypatch):
    """None left over from other tests (those no one holds would be handed out first)."""
    monkeypatch.setattr(buffers, "_ARRAYS", [])


def test_an_array_no_one_holds_is_handed_out_again_cleared_one_held_never():
    shape = (BIG, BIG, 4)
    a = buffers.zeros(shape)
    a[:] = 7
    where = a.ctypes.data
    view = a[10:20]
    del a
    held = buffers.zeros(shape)  # a's view still holds it
    assert held.ctypes.data != where and not held.any()
    del view
    again = buffers.zeros(shape)
    assert again.ctypes.data == where and not again.any()
    assert buffers.empty(shape).ctypes.data not in (where, held.ctypes.data)
    small = buffers.zeros((10, 10, 4))
    assert small.shape == (10, 10, 4) and not small.any()


def test_arrays_no_one_holds_past_the_spare_budget_are_let_go(monkeypatch):
    monkeypatch.setattr(buffers, "SPARE_BYTES", BIG * BIG * 4)  # one kept
    arrays = [buffers.zeros((BIG, BIG, 4)) for _ in range(3)]
    del arrays
    taken = buffers.zeros((BIG, BIG, 4))  # one of the three; of the two others one is kept
    assert buffers.spare_bytes() == BIG * BIG * 4 and len(buffers._ARRAYS) == 2  # noqa: SLF001
    del taken
    assert buffers.spare_bytes() == 2 * BIG * BIG * 4  # let go only when the next is taken


def _fields(seed: int) -> dict:
    rng = np.random.default_rng(seed)
    out = {"ground_truth": [], "predictions": []}
    for k in range(120):
        x0, y0 = int(rng.integers(0, BIG - 60)), int(rng.integers(0, BIG - 60))
        w, h = int(rng.integers(20, 60)), int(rng.integers(20, 60))
        mask = rng.random((h, w)) < 0.7
        name, score = ("ground_truth", None) if k % 2 else ("predictions", 0.8)
        out[name].append(ov.Instance(name, f"{seed}-{k}", ("cell", "nucleus")[k % 2], score, x0, y0, w, h, mask))
    return out


def _canvas(qtbot):
    from maskreview.gui.canvas import ImageCanvas

    view = ImageCanvas()
    qtbot.addWidget(view)
    view.resize(500, 400)
    view.show()
    qtbot.waitExposed(view)
    view.set_classes(["cell", "nucleus"])
    view.set_style(labels=False, boxes=False)
    return view


def _show(view, sample_id: str, fields: dict) -> None:
    from maskreview.gui.canvas.sample import SampleData

    view.set_sample(SampleData(sample_id, f"{sample_id}.png", np.zeros((BIG, BIG, 3), np.uint8), None, BIG, BIG, fields))


def _full_render(view, name: str) -> np.ndarray:
    insts = view.visible_instances(name)
    s = view.style
    return ov.render_layer(insts, [view.color_of(i) for i in insts], BIG, BIG, fill_alpha=s.opacity, fills=s.fills,
                           contours=s.contours)


@pytest.mark.parametrize("how", ["evicted", "cache cleared"])
def test_a_new_samples_layers_take_the_buffers_of_layers_let_go_and_equal_a_full_render(qtbot, monkeypatch, how):
    from maskreview.gui.canvas import view as view_module

    view = _canvas(qtbot)
    _show(view, "a", _fields(1))
    old = {layer.array.ctypes.data for layer, _ in view._layer_cache.values()}  # noqa: SLF001 - not the arrays: held here they could not be handed out
    if how == "evicted":  # room for the two layers of one sample only
        monkeypatch.setattr(view_module, "_LAYER_CACHE_BYTES", 2 * BIG * BIG * 4)
    else:
        view._layer_cache.clear()  # noqa: SLF001 - as set_classes / invalidate do
    _show(view, "b", _fields(2))
    new = {layer.array.ctypes.data for layer, _ in view._layer_cache.values()}  # noqa: SLF001
    assert len(old) == len(new) == 2 and new == old
    for name in ("ground_truth", "predictions"):
        assert np.array_equal(view._layer_cache[next(k for k in view._layer_cache if k[4] == name)][0].array,  # noqa: SLF001
                              _full_render(view, name))


def test_a_cached_samples_layers_are_never_handed_out(qtbot):
    view = _canvas(qtbot)
    _show(view, "a", _fields(1))
    a_layers = {k[4]: layer.array.copy() for k, (layer, _) in view._layer_cache.items()}  # noqa: SLF001
    _show(view, "b", _fields(2))
    _show(view, "a", _fields(1))  # from the cache: its pixels as they were
    assert len(view._layer_cache) == 4  # noqa: SLF001
    for name, before in a_layers.items():
        key = next(k for k in view._layer_cache if k[0] == "a" and k[4] == name)  # noqa: SLF001
        assert np.array_equal(view._layer_cache[key][0].array, before)  # noqa: SLF001


def test_a_new_image_takes_the_buffer_of_the_image_before_and_shows_its_own_pixels(qtbot):
    from maskreview.gui.canvas.sample import SampleData

    view = _canvas(qtbot)
    rng = np.random.default_rng(5)
    first, second = (rng.integers(0, 255, (BIG, BIG, 3), dtype=np.uint8) for _ in range(2))
    view.set_sample(SampleData("a", "a.png", first, None, BIG, BIG, {}))
    where = view.image_qimage._keep.ctypes.data  # noqa: SLF001
    view._image_item.mips._wait()  # noqa: SLF001 - its mip level made ahead on the pool reads it until done
    view.set_sample(SampleData("b", "b.png", second, None, BIG, BIG, {}))
    image = view.image_qimage
    assert image._keep.ctypes.data == where  # noqa: SLF001
    shown = np.frombuffer(image.constBits(), np.uint8).reshape(BIG, BIG, 4)
    assert np.array_equal(shown[..., 2::-1], second)
