"""``python -m provmark.bench``: the benchmark CLI without the main ``provmark`` command."""

import sys

from .cli import main

sys.exit(main())
