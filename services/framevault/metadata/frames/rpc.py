"""Frame RPCs: unary CRUD and the upload stream (transport only)."""


class FrameRpcs:
    """GetFrame ... ListFrames, UploadFrames, ListReferencedBlobs."""
