"""`python -m printfleet` is the `printfleet` command."""

import sys

from printfleet.cli import main

sys.exit(main())
