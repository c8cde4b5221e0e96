"""``python -m labelbench.labeling``: the labeling command (see ``labelbench.labeling.cli``)."""

import sys

from labelbench.errors import run_app
from labelbench.labeling.cli import app

sys.exit(run_app(app))
