"""`python -m hardnet_analysis` runs the `hda` command line."""

import sys

from hardnet_analysis.cli.main import main

sys.exit(main())
