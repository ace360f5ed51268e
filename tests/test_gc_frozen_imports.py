"""FiftyOne's import-time objects are kept out of cyclic collections (``store.fiftyone``:
``gc.freeze`` once): a full collection walked all ~230,000 of them, 0.3-0.5 s CPU wherever it
fell (a window edit step of 630 ms in the quiet bench on 61187c8)."""

import gc
import weakref

from maskreview.core import store


def test_fiftyones_classes_and_functions_are_not_walked_by_a_collection():
    import fiftyone.core.dataset as fod
    import fiftyone.core.labels as fol

    store.fiftyone()
    tracked = gc.get_objects()  # every generation a collection walks (not the permanent one)
    assert not any(o is fod.Dataset or o is fol.Detection or o is fod.load_dataset for o in tracked)
    assert gc.get_freeze_count() > 100_000


def test_cycles_made_afterwards_are_still_collected():
    store.fiftyone()

    class Node:
        pass

    node = Node()
    node.me = node  # a reference cycle: only the cyclic collector frees it
    gone = weakref.ref(node)
    del node
    gc.collect()
    assert gone() is None
