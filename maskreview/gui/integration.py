"""Editing, tagging, export and model runs wired into the main window (``gui.features.install_all``
calls each ``install_*`` once). Evaluation, the model panel, the browser's filters and the
selection are features of their own in ``gui/features/``.
"""

from __future__ import annotations

from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QLabel, QMessageBox

from maskreview.core.fields import DEFAULT_EVAL_KEY, GT_FIELD, ORIGINAL_SUFFIX, PRED_FIELD
from maskreview.gui import actions as acts
from maskreview.gui.actions import ActionSpec
from maskreview.gui.features.menus import add_action, menu as _menu, taken_shortcuts as _taken_shortcuts  # noqa: F401

GT, PRED = GT_FIELD, PRED_FIELD


def evaluate(window, iou_type: str = "segm", eval_key: str = DEFAULT_EVAL_KEY):
    """Evaluate the whole dataset's predictions (``features.evaluation``); returns the job or None."""
    return window.features.evaluation.evaluate(iou_type, eval_key)


# ---------------------------------------------------------------------------- editing
def install_editing(window):
    """Undo history dock, edit tools, delete / relabel / promote, tag keys, review progress, export."""
    from maskreview.gui.canvas.edit_tools import TOOL_KEYS, make_edit_tools
    from maskreview.gui.edit_prompts import EditPrompts
    from maskreview.gui.panels.history import HistoryPanel

    history = HistoryPanel(window.undo_stack)
    window.add_dock(history, "History", "left")
    window.tabifyDockWidget(window.docks["Class distribution"], window.docks["History"])
    window.docks["Class distribution"].raise_()
    window.edits = None
    window.edit_prompts = EditPrompts(window, lambda: window.classes)
    window.review_label = QLabel()
    window.statusBar().addPermanentWidget(window.review_label)
    window.edit_tools = make_edit_tools(lambda op: _apply(window, op), field_for_new=lambda: GT,
                                        label_for_new=lambda: _label_for_new(window))
    acts.KEY_HINTS.extend(row for row in TOOL_KEYS if row not in acts.KEY_HINTS)
    window.dataset_changed.connect(lambda ds: _dataset_for_edits(window, ds))
    window.sample_changed.connect(lambda sid: _loaded(window, sid))
    window.canvas.tool_message.connect(lambda text: window.statusBar().showMessage(text, 4000))

    edit, file_menu = window.edit_menu, window.menus["File"]
    edit.addSeparator()
    specs = [
        (ActionSpec("delete_label", "&Delete label", ("Delete", "Backspace"), "Edit", "delete",
                    "Delete the selected label"), lambda: delete_selected(window)),
        (ActionSpec("relabel", "&Relabel…", ("Ctrl+L",), "Edit", tip="Change the selected label's class"),
         lambda: relabel_selected(window)),
        (ActionSpec("promote", "&Promote to ground truth", ("Ctrl+Shift+G",), "Edit",
                    tip="Copy the selected prediction into the ground truth"), lambda: promote_selected(window)),
    ]
    for spec, handler in specs:
        add_action(window, spec, handler, edit)
    edit.addSeparator()
    tools = [("select", "&Select tool", ("S",)), ("brush", "&Brush tool", ("Shift+B",)),
             ("eraser", "&Eraser tool", ("E",)), ("polygon", "P&olygon tool", ("Shift+P",)),
             ("outline", "O&utline tool", ("Shift+O",))]
    for name, text, keys in tools:
        add_action(window, ActionSpec(f"tool_{name}", text, keys, "Edit", checkable=True),
                   lambda n=name: set_tool(window, n), edit)
    add_action(window, ActionSpec("tool_pan", "Pan (no tool)", ("Shift+Esc",), "Edit", checkable=True),
               lambda: set_tool(window, None), edit)
    edit.addSeparator()
    install_tag_keys(window, edit)
    add_action(window, ActionSpec("export_tagged", "&Export tagged…", ("Ctrl+E",), "File",
                                  tip="Export tagged samples (COCO or FiftyOne)"), lambda: export_tagged(window),
               file_menu)
    window.edits_failed = []
    set_tool(window, None)
    return history


def _label_for_new(window) -> str | None:
    sel = window.canvas.selected_instance
    label = window.edit_prompts.class_for_new(sel.label if sel is not None else None)
    if label is None:
        window.statusBar().showMessage("new instance cancelled (no class chosen)", 4000)
    return label


def _dataset_for_edits(window, dataset) -> None:
    from maskreview.core.editing.session import EditSession
    from maskreview.gui.commands import EditController

    if window.edits is not None:
        window.edits.session.close()
        window.edits.deleteLater()
    window.undo_stack.clear()
    edits = EditController(EditSession(dataset), window.undo_stack, window)
    edits.changed.connect(lambda ids: _edited(window, ids))
    edits.conflict.connect(lambda error, what: _conflict(window, error, what))
    edits.failed.connect(lambda message: (window.edits_failed.append(message), window.notify(message)))
    window.edits = edits
    _say_replayed(window, edits.session.replayed)
    update_review_progress(window)


def _say_replayed(window, report: dict) -> None:
    """What replaying interrupted sessions' journals recovered; a message box if anything was not."""
    from maskreview.core.editing.session import replay_message

    message = replay_message(report)
    if message is None:
        return
    if report["conflicts"] or report["damaged"]:
        window.notify(message, "Edit journal")
    else:
        window.statusBar().showMessage(message, 10000)


def _loaded(window, sample_id) -> None:
    """Edits to the sample on show are based on the version read with it (no query, no write)."""
    data = window.canvas.data
    if window.edits is not None and sample_id is not None and data is not None and data.sample_id == sample_id:
        window.edits.session.loaded(sample_id, data.version)


def _apply(window, op, text: str = ""):
    """Apply ``op`` (a list of ops: one undo step named ``text``); the canvas (redrawn by then) keeps
    the edited label selected, or selects the label the op created (a promoted prediction, a new
    polygon or brush instance)."""
    if window.edits is None:
        window.statusBar().showMessage("Open a dataset first", 4000)
        return None
    change = window.edits.apply(op) if not isinstance(op, list) else window.edits.apply_many(op, text)
    patches = [p for c in (change if isinstance(change, list) else [change]) if c for p in c.patches]
    created = [(lp.field, lp.label_id) for p in patches
               if p.sample_id == window.current_sample_id for lp in p.labels
               if lp.before is None and lp.after is not None and not lp.field.endswith(ORIGINAL_SUFFIX)]
    if created:
        window.canvas.select_label(*created[-1])
    return change


def _edited(window, sample_ids: list[str]) -> None:
    for sid in sample_ids:
        window.refresh_sample(sid)
    update_review_progress(window)


def _conflict(window, error, what) -> None:
    answer = QMessageBox.question(
        window, "Edited elsewhere",
        f"{error}\n\nKeep your edit (overwrite theirs)? No reloads their version.",
        QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No)
    window.edits.resolve(error, what, answer == QMessageBox.StandardButton.Yes)


def _selected_ref(window):
    from maskreview.core.editing.ops import LabelRef

    inst, sid = window.canvas.selected_instance, window.current_sample_id
    if inst is None or sid is None:
        window.statusBar().showMessage("Select a label first (click it with the select tool, S)", 4000)
        return None
    return LabelRef(sid, inst.field, inst.id)


def delete_selected(window):
    from maskreview.core.editing.ops import DeleteLabels

    ref = _selected_ref(window)
    return _apply(window, DeleteLabels((ref,))) if ref is not None else None


def relabel_selected(window, label: str | None = None):
    from maskreview.core.editing.ops import Relabel

    ref = _selected_ref(window)
    if ref is None:
        return None
    label = label or window.edit_prompts.relabel_class(window.canvas.selected_instance.label)
    return _apply(window, Relabel((ref,), label)) if label else None


def promote_selected(window):
    from maskreview.core.editing.ops import DeleteLabels, LabelRef, Promote
    from maskreview.gui.edit_prompts import KEEP_BOTH, REPLACE, duplicates_in

    ref = _selected_ref(window)
    if ref is None:
        return None
    if ref.field == GT:
        window.statusBar().showMessage("That label is already ground truth", 4000)
        return None
    pred = window.canvas.selected_instance
    duplicates = duplicates_in(pred, window.canvas.data.fields.get(GT, []))
    answer = window.edit_prompts.duplicate_answer(pred, duplicates) if duplicates else KEEP_BOTH
    if answer is None:
        window.statusBar().showMessage("promote cancelled", 4000)
        return None
    if answer == REPLACE:
        gt, iou = duplicates[0]
        replaced = LabelRef(ref.sample_id, GT, gt.id)
        return _apply(window, [DeleteLabels((replaced,)), Promote(ref, GT)],
                      f"promote {pred.label} prediction, replacing its ground truth (IoU {iou:.2f})")
    return _apply(window, Promote(ref, GT))


def set_tool(window, name: str | None) -> None:
    window.canvas.set_tool(window.edit_tools[name] if name else None)
    window.canvas.setFocus()  # the tool's keys ([ ], Enter, Esc, Backspace, Tab) go to the canvas
    for key, action in window.actions_.items():
        if key.startswith("tool_"):
            action.setChecked(key == f"tool_{name or 'pan'}")


# ---------------------------------------------------------------------------- tagging and export
def install_tag_keys(window, menu) -> None:
    """One action per tag of the user's tag key map, on its bare key (one scheme: the digits 1-4 for the
    problem tags, R for reviewed); a key another action has is refused, not moved to another modifier."""
    from maskreview.core.errors import MaskreviewError
    from maskreview.core.tagging import load_tag_keys

    try:
        keys = load_tag_keys()
    except MaskreviewError as exc:
        window.statusBar().showMessage(str(exc), 10000)
        from maskreview.core.tagging import DEFAULT_TAG_KEYS as keys
    taken = _taken_shortcuts(window)
    window.tag_keys = keys
    for key, tag in keys.items():
        clash = QKeySequence(key).toString() in taken
        if clash:
            window.statusBar().showMessage(f"tag key {key!r} for '{tag}' is taken by another action: "
                                           "choose another in File ▸ Settings ▸ Keys", 10000)
        add_action(window, ActionSpec(f"tag_{tag}", f"Tag '{tag}'", () if clash else (key,), "Tags",
                                      tip=f"Toggle tag '{tag}' on the selected label, else the sample"),
                   lambda t=tag: tag_named(window, t), menu)


def tag_named(window, tag: str | None):
    """Toggle ``tag`` on the selected label, else on the current sample."""
    from maskreview.core.editing.ops import LabelRef
    from maskreview.core.tagging import tag_op

    sid = window.current_sample_id
    if sid is None or not tag:
        return None
    inst = window.canvas.selected_instance
    labels = [LabelRef(sid, inst.field, inst.id)] if inst is not None else None
    return _apply(window, tag_op(tag, [sid], labels))


def tag_key(window, key: str):
    """Toggle the key's tag on the selected label, else on the current sample."""
    return tag_named(window, window.tag_keys.get(key))


def update_review_progress(window) -> None:
    from maskreview.core.tagging import review_progress

    if window.dataset is None:
        window.review_label.setText("")
        return
    done, total = review_progress(window.dataset)
    window.review_label.setText(f"reviewed {done}/{total}")


def export_tagged(window):
    from maskreview.gui import workers
    from maskreview.gui.export_dialog import ExportDialog

    if window.dataset is None:
        window.notify("Open a dataset first.")
        return None
    dialog = ExportDialog(window.dataset, window)
    if not dialog.exec():
        return None
    return window._start_job(workers.Job(dialog.job_fn(), "export"), lambda report: window.statusBar().showMessage(
        f"exported {report['samples']} samples, {report['annotations']} labels to {report['out']}", 10000))


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
