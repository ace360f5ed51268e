"""Property-based fuzzing (hypothesis) of the COCO reader and the mask conversions.

Whatever the input, the only exception is our clear one (BadInputError, of which masks.MaskError
is a kind); what is accepted decodes to exactly the image's size. The number of examples is
bounded so the file runs in CI in well under a minute.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from PIL import Image

from maskreview.core import cocofile, sources
from maskreview.core import masks as mk
from maskreview.core.errors import BadInputError
from maskreview.core.progress import Progress

FUZZ = settings(max_examples=200, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
W, H = 16, 12

json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=True),
                         st.text(max_size=8))
json_values = st.recursive(json_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=4)), max_leaves=12)


def mostly(good, bad=json_scalars):
    """``good`` four times in five: deep enough into a file to reach the checks past the first."""
    return st.integers(0, 4).flatmap(lambda k: bad if k == 4 else good)


numbers = st.one_of(st.integers(-50, 80), st.floats(-50, 80), st.sampled_from([float("nan"), float("inf"), 1e300]))
bitmaps_hw = st.lists(st.booleans(), min_size=W * H, max_size=W * H).map(lambda b: np.array(b, bool).reshape(H, W))
valid_counts = bitmaps_hw.map(lambda b: mk.rle_to_json(mk.encode_rle(b))["counts"])
rle_text = st.one_of(
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=130), max_size=24),
    valid_counts,
    st.tuples(valid_counts, st.integers(0, 30)).map(lambda t: t[0][:t[1]]),  # cut short
    st.tuples(valid_counts, st.text(alphabet=st.characters(min_codepoint=48, max_codepoint=111), max_size=4)).map(
        "".join),  # overlong
    st.tuples(valid_counts, st.integers(0, 30), st.characters(min_codepoint=40, max_codepoint=120)).map(
        lambda t: t[0][:t[1]] + t[2] + t[0][t[1] + 1:]),  # one character changed
)
counts_lists = st.one_of(st.lists(st.one_of(st.integers(-5, W * H + 5), st.just(W * H)), max_size=6),
                         st.integers(-3, W * H + 3).map(lambda k: [k, W * H - k]))
sizes = mostly(st.just([H, W]), st.one_of(st.lists(st.integers(-1, 20), max_size=3), json_values))
polygons = st.lists(st.lists(numbers, max_size=10), max_size=3)
good_polygons = st.lists(st.lists(st.floats(-2, W + 2), min_size=6, max_size=10).filter(lambda p: len(p) % 2 == 0),
                         min_size=1, max_size=2)
segmentations = st.one_of(
    good_polygons,
    polygons,
    st.fixed_dictionaries({"size": sizes, "counts": st.one_of(rle_text, counts_lists)}),
    bitmaps_hw.map(lambda b: mk.rle_to_json(mk.encode_rle(b))),
    json_values,
)
boxes = mostly(st.lists(numbers, min_size=4, max_size=4), json_values)
ids = st.sampled_from([1, 2])
annotations = mostly(st.fixed_dictionaries(
    {"image_id": mostly(ids), "category_id": mostly(st.just(1)), "segmentation": mostly(segmentations, st.none())},
    optional={"bbox": boxes, "iscrowd": mostly(st.sampled_from([0, 1])), "area": mostly(st.floats(0, 100), numbers)}),
    json_values)
images = st.one_of(
    st.just([{"id": 1, "file_name": "a.png", "width": W, "height": H}, {"id": 2, "file_name": "b.png"}]),
    st.lists(mostly(st.fixed_dictionaries(
        {"id": mostly(ids), "file_name": mostly(st.sampled_from(["a.png", "b.png"]), st.text(max_size=12))},
        optional={"width": mostly(st.just(W), st.integers(-2, 40)), "height": mostly(st.just(H), st.integers(-2, 40))}),
        json_values), max_size=3))
categories = mostly(st.just([{"id": 1, "name": "a"}]),
                    st.lists(mostly(st.fixed_dictionaries({"id": mostly(ids), "name": mostly(st.just("a"))}),
                                    json_values), max_size=3))
coco_files = mostly(
    st.fixed_dictionaries({"images": images, "annotations": st.lists(annotations, max_size=3),
                           "categories": categories}),
    json_values,
)


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz")
    (folder / "images").mkdir()
    for name in ("a.png", "b.png"):
        Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(folder / "images" / name)
    return folder


@FUZZ
@given(data=coco_files, trust=st.booleans())
def test_coco_reader_refuses_clearly_or_reads_exact_masks(fo, image_dir, data, trust):
    path = image_dir / "fuzz.json"
    path.write_text(json.dumps(data))
    spec = sources.SourceSpec("coco", path, image_dir / "images")
    try:
        samples, _, _ = sources._coco_samples(spec, Progress(), trust_json_size=trust)
    except BadInputError as exc:
        assert str(exc).startswith(str(path)) and "\n" not in str(exc)
        event("refused: " + str(exc)[len(str(path)) + 2:][:30])
        return
    event(f"read, {sum(len(s.ground_truth.detections) for s in samples)} instances")
    for sample in samples:
        width, height = sample.metadata.width, sample.metadata.height
        for det in sample.ground_truth.detections:
            assert mk.detection_to_bitmap(det, height, width).shape == (height, width)


def test_a_box_only_annotation_too_big_to_fill_is_refused_by_the_reader(fo, image_dir):
    """Found by the fuzzer: a box-only annotation [0, 0, 0, 1e300] was read, then failed where
    the box was filled (the canvas, an evaluation) instead of being refused with its file."""
    path = image_dir / "huge-box.json"
    path.write_text(json.dumps({"images": [{"id": 1, "file_name": "a.png", "width": 16, "height": 12}],
                                "annotations": [{"image_id": 1, "category_id": 1, "segmentation": None,
                                                 "bbox": [0, 0, 0, 1e300]}],
                                "categories": [{"id": 1, "name": "a"}]}))
    with pytest.raises(BadInputError, match="times larger than its 16x12 image") as exc:
        sources._coco_samples(sources.SourceSpec("coco", path, image_dir / "images"), Progress())
    assert str(exc.value).startswith(str(path))


@FUZZ
@given(results=st.one_of(st.lists(st.one_of(st.fixed_dictionaries(
    {"image_id": mostly(ids), "category_id": mostly(st.just(1)),
     "score": mostly(numbers), "segmentation": segmentations},
    optional={"bbox": boxes}), json_values), max_size=4), json_values))
def test_results_reader_refuses_clearly_or_gives_exact_rles(results, tmp_path_factory):
    gt = cocofile.check_instances({"images": [{"id": 1, "width": W, "height": H}, {"id": 2, "width": W, "height": H}],
                                   "categories": [{"id": 1, "name": "a"}]}, "gt.json", need_file_names=False)
    try:
        clean, _ = cocofile.check_results(results, "res.json", gt, "segm", "gt.json")
    except BadInputError as exc:
        assert str(exc).startswith("res.json") and "\n" not in str(exc)
        event("refused")
        return
    event(f"read, {len(clean)} results")
    for res in clean:
        assert mk.decode_rle(mk.coco_to_rle(res["segmentation"], H, W)).shape == (H, W)


@FUZZ
@given(seg=segmentations, height=st.integers(1, 20), width=st.integers(1, 20))
def test_any_segmentation_is_refused_or_decodes_to_the_image_size(seg, height, width):
    try:
        rle = mk.coco_to_rle(seg, height, width)
    except mk.MaskError:
        event("refused")
        return
    event("decoded")
    assert mk.decode_rle(rle).shape == (height, width)


@FUZZ
@given(counts=rle_text, height=mostly(st.just(H), st.integers(1, 20)), width=mostly(st.just(W), st.integers(1, 20)))
def test_compressed_counts_are_refused_or_cover_exactly_the_image(counts, height, width):
    try:
        rle = mk.coco_to_rle({"size": [height, width], "counts": counts}, height, width)
    except mk.MaskError:
        event("refused")
        return
    event("decoded")
    bitmap = mk.decode_rle(rle)  # pycocotools' own decoding agrees with our run lengths
    runs = mk.compressed_counts(counts)
    assert bitmap.shape == (height, width) and runs.sum() == height * width
    assert int(bitmap.sum()) == int(runs[1::2].sum())


bitmaps = st.tuples(st.integers(1, 14), st.integers(1, 14), st.integers(0, 2**32 - 1)).map(
    lambda t: np.random.default_rng(t[2]).random((t[0], t[1])) < np.random.default_rng(t[2] + 1).random())


@FUZZ
@given(bitmap=bitmaps)
def test_bitmap_round_trips_through_rle_detection_and_polygons(fo, bitmap):
    height, width = bitmap.shape
    rle = mk.encode_rle(bitmap)
    as_json = mk.rle_to_json(rle)
    assert np.array_equal(mk.coco_to_bitmap(as_json, height, width), bitmap)
    assert mk.compressed_counts(as_json["counts"]).sum() == height * width
    det = mk.bitmap_to_detection(bitmap, "x")
    assert np.array_equal(mk.detection_to_bitmap(det, height, width), bitmap)
    x0, y0, _, _ = mk.detection_pixel_box(det, height, width)
    pasted = mk.paste_rles([(x0, y0, det.mask)], height, width)[0] if det.mask.any() else mk.encode_rle(bitmap)
    assert np.array_equal(mk.decode_rle(pasted), bitmap)
    mk.coco_to_rle(mk.bitmap_to_polygons(bitmap), height, width)  # outlines always make valid polygons


@FUZZ
@given(box=st.lists(numbers, min_size=0, max_size=5), shape=st.tuples(st.integers(0, 6), st.integers(0, 6)),
       with_mask=st.booleans())
def test_detection_to_bitmap_refuses_clearly_or_fits_the_image(fo, box, shape, with_mask):
    det = fo.Detection(label="x", bounding_box=box, mask=np.ones(shape, bool) if with_mask else None)
    try:
        out = mk.detection_to_bitmap(det, H, W)
    except mk.MaskError:
        return
    assert out.shape == (H, W)


@FUZZ
@given(content=st.one_of(st.binary(max_size=200), coco_files.map(lambda d: json.dumps(d).encode()).flatmap(
    lambda b: st.integers(0, len(b)).map(lambda k: b[:k]))))  # arbitrary bytes, and files cut short
def test_any_bytes_are_json_or_one_clear_line(fo, image_dir, content):
    path = image_dir / "bytes.json"
    path.write_bytes(content)
    try:
        sources.open_source(path, images_dir=image_dir / "images", name="fuzz-bytes")
    except BadInputError as exc:
        assert "\n" not in str(exc)
        return
    fo.delete_dataset("fuzz-bytes")
