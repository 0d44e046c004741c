"""noisyfer: facial expression recognition trained on noisy labels."""

__version__ = "0.1.0"
