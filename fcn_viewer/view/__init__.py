"""The viewer's model without Qt, so what the window shows can be built and tested without a window."""
