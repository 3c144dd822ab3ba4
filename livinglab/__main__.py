"""`python -m livinglab` = the `livinglab` command (used to start child processes)."""

import sys

from livinglab.cli import main

sys.exit(main())
