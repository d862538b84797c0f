"""Service processes tune the cyclic garbage collector for streaming."""

import gc

from framevault.common.server import (
    GC_MIDDLE_THRESHOLD,
    GC_OLD_THRESHOLD,
    GC_YOUNG_THRESHOLD,
    tune_garbage_collection,
)


def test_tuning_freezes_what_is_alive_and_raises_the_thresholds():
    before = gc.get_threshold()
    try:
        tune_garbage_collection()
        assert gc.get_threshold() == (GC_YOUNG_THRESHOLD, GC_MIDDLE_THRESHOLD, GC_OLD_THRESHOLD)
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
