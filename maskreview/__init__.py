"""maskreview: review and correct instance-segmentation results on top of FiftyOne."""

__version__ = "0.1.0"
