"""The window's features, each a module that gets the window and the review state explicitly.

``install_all(window, state)`` builds them in order and returns them by name; the window keeps
that namespace (``window.features``) and nothing else is attached to it from here.
"""

from __future__ import annotations

from types import SimpleNamespace


def install_all(window, state, out: SimpleNamespace | None = None) -> SimpleNamespace:
    """Each feature in order into ``out`` (a feature may use those before it through the window)."""
    from maskreview.gui import integration
    from maskreview.gui.features.assist import AssistFeature
    from maskreview.gui.features.browsing import BrowsingFeature
    from maskreview.gui.features.editing import EditingFeature
    from maskreview.gui.features.desktop import DesktopFeature
    from maskreview.gui.features.evaluation import EvaluationFeature
    from maskreview.gui.features.model_panel import ModelPanelFeature
    from maskreview.gui.features.offline import OfflineFeature
    from maskreview.gui.features.review_queue import ReviewQueueFeature
    from maskreview.gui.features.selection import SelectionFeature
    from maskreview.gui.thumbnail_badges import BadgesFeature

    out = out if out is not None else SimpleNamespace()
    out.browsing = BrowsingFeature(window, state)
    out.evaluation = EvaluationFeature(window, state)
    integration.install_app_link(window)
    out.model_panel = ModelPanelFeature(window, state)
    out.editing = EditingFeature(window, state)
    out.offline = OfflineFeature(window, state)  # after editing: it follows the edit session editing makes
    out.model_runs = integration.install_model_runs(window)
    out.selection = SelectionFeature(window, state)
    out.review_queue = ReviewQueueFeature(window, state)
    out.assist = AssistFeature(window, state)
    out.badges = BadgesFeature(window, state, out.evaluation)  # thumbnails: tags, reviewed, FP / FN at the thresholds
    out.desktop = DesktopFeature(window, state)  # last: applies the user's keys to every action added above
    return out
