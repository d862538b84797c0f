"""``python -m framevault.metadata``: runs the metadata service."""

from framevault.common.server import main
from framevault.metadata.app import build_service

if __name__ == "__main__":
    main(build_service)
