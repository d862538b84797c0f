"""Limits of the metadata service's requests that clients keep to before they send: the service
refuses a request beyond them with INVALID_ARGUMENT naming the field. Both sides import them from
here, so they cannot drift apart."""

from __future__ import annotations

# page_size of every list call (ListDatasets, ListVersions, ListViewFrames ...): 1..MAX_PAGE_SIZE
# items; 0 asks for DEFAULT_PAGE_SIZE.
MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 100
# Frame ids of one DeleteFrames request.
MAX_DELETE_IDS = 10_000
