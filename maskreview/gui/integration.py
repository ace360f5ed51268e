"""Model runs and the FiftyOne App link wired into the main window (``gui.features.install_all``
calls each ``install_*`` once), and the old entry points of the features now in ``gui/features/``
(evaluation, editing: ``integration.evaluate(window)``, ``delete_selected(window)``...).
"""

from __future__ import annotations

from maskreview.core.fields import DEFAULT_EVAL_KEY, GT_FIELD, PRED_FIELD
from maskreview.gui.actions import ActionSpec
from maskreview.gui.features.menus import add_action, menu as _menu, taken_shortcuts as _taken_shortcuts  # noqa: F401

GT, PRED = GT_FIELD, PRED_FIELD


def evaluate(window, iou_type: str = "segm", eval_key: str = DEFAULT_EVAL_KEY):
    """Evaluate the whole dataset's predictions (``features.evaluation``); returns the job or None."""
    return window.features.evaluation.evaluate(iou_type, eval_key)


# ---------------------------------------------------------------------------- editing (gui.features.editing)
def _editing(window):
    return window.features.editing


def delete_selected(window):
    return _editing(window).delete_selected()


def relabel_selected(window, label: str | None = None):
    return _editing(window).relabel_selected(label)


def promote_selected(window):
    return _editing(window).promote_selected()


def set_tool(window, name: str | None) -> None:
    _editing(window).set_tool(name)


def tag_named(window, tag: str | None):
    return _editing(window).tag_named(tag)


def tag_key(window, key: str):
    return _editing(window).tag_key(key)


def update_review_progress(window) -> None:
    _editing(window).update_review_progress()


def export_tagged(window):
    return _editing(window).export_tagged()


def install_model_runs(window):
    """Model runs (own field per model, undoable, the remembered model), Fine-tune and Compare."""
    from maskreview.gui.dialogs.compare import open_compare
    from maskreview.gui.dialogs.finetune import open_finetune
    from maskreview.gui.model_runs import ModelRuns

    runs = ModelRuns(window)
    window.model_runs = runs
    add_action(window, ActionSpec("finetune", "&Fine-tune on reviewed samples…", (), "Model",
                                  tip="Train the model further on the samples tagged 'reviewed' (in the background)"),
               lambda: open_finetune(window, runs), window.menus["Model"])
    window.menus["Model"].insertAction(window.actions_["cancel_job"], window.actions_["finetune"])
    add_action(window, ActionSpec("compare_models", "&Compare models…", (), "Evaluate",
                                  tip="Two prediction fields against the ground truth, instance by instance"),
               lambda: open_compare(window, runs), _menu(window, "&Evaluate"))
    return runs


def install_app_link(window) -> None:
    """View ▸ Open in FiftyOne App, View ▸ Save view in FiftyOne…, the browser's saved views."""
    from maskreview.gui import app_link

    app_link.install(window)
