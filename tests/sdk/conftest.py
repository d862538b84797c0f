"""Fixtures of the SDK tests."""

from .helpers import sdk

__all__ = ["sdk"]
