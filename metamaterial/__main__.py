"""``python -m metamaterial`` is the ``metamaterial`` command."""

import sys

from .cli import main

sys.exit(main())
