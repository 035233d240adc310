"""`python -m pgcapacity`: the same as the `pgcapacity` command."""

import sys

from pgcapacity.cli import main

sys.exit(main())
