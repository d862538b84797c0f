"""Dataset and version RPCs (transport only)."""


class CatalogRpcs:
    """CreateDataset ... GetVersionStatistics; see catalog/ for the domain."""
