"""Service processes tune the cyclic garbage collector for streaming."""

import gc

from framevault.common.config import Settings
from framevault.common.server import tune_garbage_collection


def test_tuning_freezes_what_is_alive_and_raises_the_thresholds():
    before = gc.get_threshold()
    try:
        settings = Settings()
        tune_garbage_collection(settings)
        assert gc.get_threshold() == (settings.gc_young_threshold, settings.gc_middle_threshold,
                                      settings.gc_old_threshold)
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
