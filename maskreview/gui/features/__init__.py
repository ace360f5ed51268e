"""The window's features, each a module that gets the window and the review state explicitly.

``install_all(window, state)`` builds them in order and returns them by name; the window keeps
that namespace (``window.features``) and nothing else is attached to it from here.
"""

from __future__ import annotations

from types import SimpleNamespace


def install_all(window, state) -> SimpleNamespace:
    from maskreview.gui import integration
    from maskreview.gui.features.assist import AssistFeature
    from maskreview.gui.features.browsing import BrowsingFeature
    from maskreview.gui.features.evaluation import EvaluationFeature
    from maskreview.gui.features.model_panel import ModelPanelFeature
    from maskreview.gui.features.offline import OfflineFeature
    from maskreview.gui.features.review_queue import ReviewQueueFeature
    from maskreview.gui.features.selection import SelectionFeature

    out = SimpleNamespace()
    out.browsing = BrowsingFeature(window, state)
    out.evaluation = EvaluationFeature(window, state)
    integration.install_app_link(window)
    out.model_panel = ModelPanelFeature(window, state)
    out.editing = integration.install_editing(window)
    out.offline = OfflineFeature(window, state)  # after editing: it follows the edit session editing makes
    out.model_runs = integration.install_model_runs(window)
    out.selection = SelectionFeature(window, state)
    out.review_queue = ReviewQueueFeature(window, state)
    out.assist = AssistFeature(window, state)
    return out
