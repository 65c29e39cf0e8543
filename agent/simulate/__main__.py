"""`python -m agent.simulate`, the same as `python -m agent simulate`."""

import sys

from .cli import main

sys.exit(main())
