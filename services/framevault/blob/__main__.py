"""``python -m framevault.blob``: runs the blob service."""

import asyncio

from framevault.blob.app import build_service
from framevault.common.config import Settings
from framevault.common.logs import configure_logging
from framevault.common.server import run_service


def main() -> None:
    settings = Settings.from_env()
    configure_logging(settings.log_level, settings.log_format)
    asyncio.run(run_service(build_service(settings), settings))


if __name__ == "__main__":
    main()
