"""SHA-256 whose running state can be saved and restored.

A resumable upload must check the sha256 of the whole blob at the end, even
when the blob service restarted in the middle: the hash of the parts already
in S3 has to survive the process. ``hashlib`` objects cannot be serialized,
and parts of an unfinished S3 multipart upload cannot be read back to hash
them again. OpenSSL's low-level SHA-256 keeps its whole state in the public
``SHA256_CTX`` struct (``openssl/sha.h``: eight chaining words, the bit
count, the pending partial block), so saving that struct after each part is
an exact checkpoint. It runs the same assembly as ``hashlib`` and releases
the GIL like it.

Where libcrypto cannot be loaded, ``Sha256`` falls back to ``hashlib`` and
``checkpoint()`` returns None: uploads then resume across broken streams
but start over after a restart of the service.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib

# sizeof(SHA256_CTX): h[8], Nl, Nh, data[16] (32-bit words) and num, md_len (unsigned int).
_CTX_SIZE = 8 * 4 + 2 * 4 + 16 * 4 + 2 * 4
_DIGEST_SIZE = 32


def _load_libcrypto() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("crypto")
    if name is None:
        return None
    try:
        lib = ctypes.CDLL(name)
        for fn in (lib.SHA256_Init, lib.SHA256_Update, lib.SHA256_Final):
            fn.restype = ctypes.c_int
        lib.SHA256_Update.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t]
        lib.SHA256_Final.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        lib.SHA256_Init.argtypes = [ctypes.c_void_p]
    except (OSError, AttributeError):
        return None
    if not _self_test(lib):
        return None
    return lib


def _self_test(lib: ctypes.CDLL) -> bool:
    """Proves that a saved and restored context continues exactly like hashlib."""
    ctx = ctypes.create_string_buffer(_CTX_SIZE)
    lib.SHA256_Init(ctx)
    first, second = b"framevault" * 7, b"resumable" * 13
    lib.SHA256_Update(ctx, first, len(first))
    restored = ctypes.create_string_buffer(ctx.raw, _CTX_SIZE)
    lib.SHA256_Update(restored, second, len(second))
    out = ctypes.create_string_buffer(_DIGEST_SIZE)
    lib.SHA256_Final(out, restored)
    return out.raw == hashlib.sha256(first + second).digest()


_LIBCRYPTO = _load_libcrypto()
CHECKPOINTS_SUPPORTED = _LIBCRYPTO is not None


class Sha256:
    """Incremental SHA-256 with ``checkpoint()`` / ``restore()``."""

    def __init__(self) -> None:
        self._ctx: ctypes.Array[ctypes.c_char] | None = None
        self._fallback: hashlib._Hash | None = None
        if _LIBCRYPTO is not None:
            self._ctx = ctypes.create_string_buffer(_CTX_SIZE)
            _LIBCRYPTO.SHA256_Init(self._ctx)
        else:
            self._fallback = hashlib.sha256()

    @classmethod
    def restore(cls, checkpoint: bytes) -> Sha256:
        """The hash as it was when ``checkpoint`` was taken; raises ValueError when unusable."""
        if _LIBCRYPTO is None:
            raise ValueError("sha256 checkpoints are not supported on this platform")
        if len(checkpoint) != _CTX_SIZE:
            raise ValueError(f"sha256 checkpoint must be {_CTX_SIZE} bytes, got {len(checkpoint)}")
        restored = cls.__new__(cls)
        restored._fallback = None
        restored._ctx = ctypes.create_string_buffer(bytes(checkpoint), _CTX_SIZE)
        return restored

    def update(self, data: bytes | bytearray | memoryview) -> None:
        if self._ctx is not None:
            assert _LIBCRYPTO is not None
            _LIBCRYPTO.SHA256_Update(self._ctx, *_in_place(data))
        else:
            assert self._fallback is not None
            self._fallback.update(data)

    def checkpoint(self) -> bytes | None:
        """The exact state so far, or None when checkpoints are not supported."""
        return self._ctx.raw if self._ctx is not None else None

    def hexdigest(self) -> str:
        """The digest of everything so far (the running state stays usable)."""
        if self._ctx is None:
            assert self._fallback is not None
            return self._fallback.hexdigest()
        assert _LIBCRYPTO is not None
        final_ctx = ctypes.create_string_buffer(self._ctx.raw, _CTX_SIZE)
        out = ctypes.create_string_buffer(_DIGEST_SIZE)
        _LIBCRYPTO.SHA256_Final(out, final_ctx)
        return out.raw.hex()


def _in_place(data: bytes | bytearray | memoryview) -> tuple[bytes | ctypes.Array[ctypes.c_char], int]:
    """What ``SHA256_Update`` reads and how many bytes: ``bytes`` and writable buffers (a part buffer)
    where they are; only a read-only view other than ``bytes`` is copied first."""
    if isinstance(data, bytes):
        return data, len(data)
    view = memoryview(data).cast("B")
    if view.readonly:
        copied = view.tobytes()
        return copied, len(copied)
    return (ctypes.c_char * view.nbytes).from_buffer(view), view.nbytes
