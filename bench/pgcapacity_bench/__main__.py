"""`python -m pgcapacity_bench`: the same as `pgcapacity bench`."""

import sys

from pgcapacity_bench.main import main

sys.exit(main())
