"""Evaluation panels: summary, per-class table, PR curves, confusion matrix, failure groups.

``EvaluationDock`` composes them; see ``dock.py`` for its signals.
"""

from maskreview.gui.panels.evaluation.dock import EvaluationDock  # noqa: F401
from maskreview.gui.panels.evaluation.widgets import (  # noqa: F401
    ClassTable,
    ConfusionMatrix,
    GroupsTable,
    PRCurves,
    SummaryWidget,
)
