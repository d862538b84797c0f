"""``python -m framevault.blob``: runs the blob service."""

from framevault.blob.app import build_service
from framevault.common.server import main

if __name__ == "__main__":
    main(build_service)
