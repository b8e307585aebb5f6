"""``python -m mailroom.cli``: the same as the ``mailroom`` console script."""

import sys

from mailroom.cli import main

sys.exit(main())
