"""View RPCs: ordered iteration, counts, pages (transport only)."""


class ViewRpcs:
    """IterateFrames, CountViewFrames, ListViewFrames."""
