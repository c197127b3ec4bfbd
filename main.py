"""Opens the fcn-viewer window: `python main.py [IMAGE]`."""

import sys

from fcn_viewer.cli.main import gui_main

if __name__ == "__main__":
    sys.exit(gui_main())
