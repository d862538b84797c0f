"""The frame codec of the metadata service (services/codec, Rust)."""

MAX_FRAME_ID_BYTES: int
MAX_CONTEXT_ID_BYTES: int
MAX_FRAME_BLOB_BYTES: int
DERIVED_ID_HEX_CHARS: int
DEFAULT_SOURCE_ID: str

class CheckedFrame:
    frame_id: str
    violations: list[tuple[str, str]]
    is_valid: bool
    context_id: str
    timestamp: int
    etag: str
    referenced_blobs: list[tuple[str, int]]
    inline_blobs: list[tuple[str, int, bytes]]
    part_sizes: tuple[int, int, int, int]
    def document(self, dataset_id: str, version_id: str, saved_ms: int) -> bytes: ...

class FrameCodec:
    def __init__(self, *, max_inline_bytes: int, max_blob_bytes: int, max_meta_bytes: int) -> None: ...
    def check(self, frame: bytes, prefix: str) -> CheckedFrame: ...

def encode_document(frame: bytes, dataset_id: str, version_id: str, saved_ms: int) -> bytes: ...
def text_problem(value: str, max_bytes: int, *, required: bool = True) -> str | None: ...
def derive_frame_id(uri: str) -> str: ...
def shuffle_key(frame_id: str) -> int: ...
def key_problem(key: str) -> str | None: ...
