"""`python -m fcn_viewer` runs the command line."""

import sys

from fcn_viewer.cli.main import main

sys.exit(main())
