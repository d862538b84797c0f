"""Fixtures of the training loader tests: the SDK fixture the datasets read through."""

try:
    from tests.sdk.helpers import sdk
except ModuleNotFoundError:  # tests/ itself is on sys.path when it is not a package
    from sdk.helpers import sdk  # type: ignore[no-redef]

__all__ = ["sdk"]
