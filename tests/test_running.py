"""A long-lived process's start-up is kept out of the garbage collector's way."""

import gc

from marketdata import running


def test_settle_freezes_what_is_loaded_and_makes_young_collections_rarer() -> None:
    threshold = gc.get_threshold()
    try:
        loaded = [object() for _ in range(10)] + [[] for _ in range(10)]
        running.settle()
        assert gc.get_freeze_count() >= len(loaded) // 2  # the lists: objects gc tracks
        assert gc.get_threshold() == (running.YOUNG_COLLECTION_OBJECTS, *threshold[1:])
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
