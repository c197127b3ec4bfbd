"""The `fcn-viewer` command line."""
