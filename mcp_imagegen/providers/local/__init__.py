"""The local provider: segmentation, upscaling and text reading on this machine's CPU. Its spec
(`spec.py`) is read at every start without importing the provider (`provider.py`)."""
