"""The image canvas: scene, overlay rendering, zoom and loupe, and the tool interface edits plug into."""

from maskreview.gui.canvas.overlay import Instance
from maskreview.gui.canvas.sample import SampleData, build_sample_data, load_sample, patched_sample
from maskreview.gui.canvas.tools import CanvasTool, SelectTool
from maskreview.gui.canvas.view import ImageCanvas, OverlayStyle

__all__ = ["CanvasTool", "ImageCanvas", "Instance", "OverlayStyle", "SampleData", "SelectTool",
           "build_sample_data", "load_sample", "patched_sample"]
