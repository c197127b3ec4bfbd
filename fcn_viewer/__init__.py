"""fcn-viewer: run Fully Convolutional Networks and show every stage of their skip fusion."""

__version__ = "0.1.0"
