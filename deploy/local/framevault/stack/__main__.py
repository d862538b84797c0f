"""``python -m framevault.stack``: the ``framevault-stack`` command."""

import sys

from .cli import main

sys.exit(main())
