"""The review state (Qt-free): what is shown, filtered, selected and at which thresholds.

``ReviewState`` (``state.py``) is the one copy; the GUI's panels observe it. ``evaluation.py``
puts an evaluation at the state's thresholds (sort orders, drill-downs) and loads a stored one.
"""

from maskreview.core.review.state import Display, Filters, LabelRef, ReviewState, Thresholds  # noqa: F401
