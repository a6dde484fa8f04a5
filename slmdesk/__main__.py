"""`python -m slmdesk` runs the command line (and, with no arguments, the window)."""

from __future__ import annotations

import sys

from slmdesk.cli import main

sys.exit(main())
