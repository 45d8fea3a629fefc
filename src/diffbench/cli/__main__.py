"""`python -m diffbench.cli`: the same as the `diffbench` console script."""

import sys

from diffbench.cli.main import main

sys.exit(main())
