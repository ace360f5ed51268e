"""Editing in the window: the History dock, the edit tools, delete / relabel / promote, tag keys,
review progress and export. Every key acts on the review state's selection (``state.selection``:
what the Selection panel describes) and says in the status bar what it did, e.g.
"deleted predictions: square 0.66".

The window reads this feature's ``edits`` (the edit controller of the open dataset),
``prompts``, ``tools``, ``tag_keys`` and ``review_label`` through its own properties.
"""

from __future__ import annotations

from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QLabel, QMessageBox

from maskreview.core.fields import GT_FIELD, ORIGINAL_SUFFIX
from maskreview.gui import actions as acts
from maskreview.gui.actions import ActionSpec
from maskreview.gui.features.menus import add_action, taken_shortcuts

GT = GT_FIELD
NO_SELECTION = "Select a label first: click it (the same spot again, or Tab, for the one below)"


class EditingFeature:
    def __init__(self, window, state):
        from maskreview.gui.canvas.edit_tools import TOOL_KEYS, make_edit_tools
        from maskreview.gui.edit_prompts import EditPrompts
        from maskreview.gui.panels.history import HistoryPanel

        self.window, self.state = window, state
        self.edits = None  # gui.commands.EditController of the open dataset
        self.failed: list[str] = []  # messages of edits that failed (tests read them)
        self.history = HistoryPanel(window.undo_stack)
        window.add_dock(self.history, "History", "left")
        window.tabifyDockWidget(window.docks["Class distribution"], window.docks["History"])
        window.docks["Class distribution"].raise_()
        self.prompts = EditPrompts(window, lambda: window.classes)
        self.review_label = QLabel()
        window.statusBar().addPermanentWidget(self.review_label)
        self.tools = make_edit_tools(self.apply, field_for_new=lambda: GT, label_for_new=self._label_for_new)
        acts.KEY_HINTS.extend(row for row in TOOL_KEYS if row not in acts.KEY_HINTS)
        window.dataset_changed.connect(self._dataset_opened)
        window.sample_changed.connect(self._loaded)
        window.canvas.tool_message.connect(lambda text: window.statusBar().showMessage(text, 4000))
        self.tag_keys: dict = {}
        self._actions()

    def _actions(self) -> None:
        window = self.window
        edit, file_menu = window.edit_menu, window.menus["File"]
        edit.addSeparator()
        specs = [
            (ActionSpec("delete_label", "&Delete label", ("Delete", "Backspace"), "Edit", "delete",
                        "Delete the selected label"), self.delete_selected),
            (ActionSpec("relabel", "&Relabel…", ("Ctrl+L",), "Edit", tip="Change the selected label's class"),
             self.relabel_selected),
            (ActionSpec("promote", "&Promote to ground truth", ("Ctrl+Shift+G",), "Edit",
                        tip="Copy the selected prediction into the ground truth"), self.promote_selected),
        ]
        for spec, handler in specs:
            add_action(window, spec, handler, edit)
        edit.addSeparator()
        tools = [("select", "&Select tool", ("S",)), ("brush", "&Brush tool", ("Shift+B",)),
                 ("eraser", "&Eraser tool", ("E",)), ("polygon", "P&olygon tool", ("Shift+P",)),
                 ("outline", "O&utline tool", ("Shift+O",))]
        for name, text, keys in tools:
            add_action(window, ActionSpec(f"tool_{name}", text, keys, "Edit", checkable=True),
                       lambda n=name: self.set_tool(n), edit)
        add_action(window, ActionSpec("tool_pan", "Pan (no tool)", ("Shift+Esc",), "Edit", checkable=True),
                   lambda: self.set_tool(None), edit)
        edit.addSeparator()
        self._tag_key_actions(edit)
        add_action(window, ActionSpec("export_tagged", "&Export tagged…", ("Ctrl+E",), "File",
                                      tip="Export tagged samples (COCO or FiftyOne)"), self.export_tagged, file_menu)
        self.set_tool(None)

    # ------------------------------------------------------------------ the edit session
    def _label_for_new(self) -> str | None:
        sel = self.window.canvas.selected_instance
        label = self.prompts.class_for_new(sel.label if sel is not None else None)
        if label is None:
            self.say("new instance cancelled (no class chosen)")
        return label

    def _dataset_opened(self, dataset) -> None:
        from maskreview.core.editing.session import EditSession
        from maskreview.gui.commands import EditController

        window = self.window
        if self.edits is not None:
            self.edits.session.close()
            self.edits.deleteLater()
        window.undo_stack.clear()
        edits = EditController(EditSession(dataset), window.undo_stack, window)
        edits.written.connect(self._edited)
        edits.applying.connect(self._applying)
        edits.conflict.connect(self._conflict)
        edits.failed.connect(lambda message: (self.failed.append(message), window.notify(message)))
        self.edits = edits
        self._say_replayed(edits.session.replayed)
        self.update_review_progress()

    def _say_replayed(self, report: dict) -> None:
        """What replaying interrupted sessions' journals recovered; a message box if anything was not."""
        from maskreview.core.editing.session import replay_message

        message = replay_message(report)
        if message is None:
            return
        if report["conflicts"] or report["damaged"]:
            self.window.notify(message, "Edit journal")
        else:
            self.window.statusBar().showMessage(message, 10000)

    def _loaded(self, sample_id) -> None:
        """Edits to the sample on show are based on the version read with it (no query, no write)."""
        data = self.window.canvas.data
        if self.edits is not None and sample_id is not None and data is not None and data.sample_id == sample_id:
            self.edits.session.loaded(sample_id, data.version)

    def apply(self, op, text: str = ""):
        """Apply ``op`` (a list of ops: one undo step named ``text``); the canvas (redrawn by then)
        keeps the edited label selected, or selects the label the op created (a promoted
        prediction, a new polygon or brush instance)."""
        window = self.window
        if self.edits is None:
            self.say("Open a dataset first")
            return None
        change = self.edits.apply(op) if not isinstance(op, list) else self.edits.apply_many(op, text)
        patches = [p for c in (change if isinstance(change, list) else [change]) if c for p in c.patches]
        created = [(lp.field, lp.label_id) for p in patches
                   if p.sample_id == window.current_sample_id for lp in p.labels
                   if lp.before is None and lp.after is not None and not lp.field.endswith(ORIGINAL_SUFFIX)]
        if created:
            window.canvas.select_label(*created[-1])
        return change

    def _edited(self, change) -> None:
        """Each sample the change wrote redrawn from its patches (the one on show is not read again)."""
        for sid in change.sample_ids:
            self.window.refresh_sample(sid, [p for p in change.patches if p.sample_id == sid])
        if any(p.tags_add or p.tags_remove for p in change.patches):  # only sample tags move the count
            self.update_review_progress()

    def _applying(self, change) -> None:
        """The sample on show drawn from the change's patches while its write is in flight."""
        sid = self.window.current_sample_id
        if sid in change.sample_ids:
            self.window.show_patched(sid, [p for p in change.patches if p.sample_id == sid])

    def _conflict(self, error, what) -> None:
        answer = QMessageBox.question(
            self.window, "Edited elsewhere",
            f"{error}\n\nKeep your edit (overwrite theirs)? No reloads their version.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No)
        keep_mine = answer == QMessageBox.StandardButton.Yes
        self.edits.resolve(error, what, keep_mine)
        if not keep_mine:  # theirs, read again (an edit written behind was drawn before its write was refused)
            for sid in error.sample_ids:
                self.window.refresh_sample(sid)

    def say(self, text: str) -> None:
        self.window.statusBar().showMessage(text, 6000)

    # ------------------------------------------------------------------ keys on the selection
    def selected(self):
        """``(LabelRef, instance, its words)`` of the state's selection, or None (and says so)."""
        from maskreview.core.review.describe import LabelFacts, short

        ref, inst = self.state.selection, self.window.canvas.selected_instance
        if ref is None or inst is None:
            self.say(NO_SELECTION)
            return None
        facts = LabelFacts(inst.field, inst.label, inst.score, inst.area, (inst.x0, inst.y0, inst.w, inst.h))
        return ref, inst, short(facts)

    def delete_selected(self):
        from maskreview.core.editing.ops import DeleteLabels

        chosen = self.selected()
        if chosen is None:
            return None
        ref, _inst, words = chosen
        change = self.apply(DeleteLabels((ref,)))
        if change:
            self.say(f"deleted {words}")
        return change

    def relabel_selected(self, label: str | None = None):
        from maskreview.core.editing.ops import Relabel

        chosen = self.selected()
        if chosen is None:
            return None
        ref, inst, words = chosen
        label = label or self.prompts.relabel_class(inst.label)
        if not label:
            return None
        change = self.apply(Relabel((ref,), label))
        if change:
            self.say(f"relabelled {words} → {label}")
        return change

    def promote_selected(self):
        from maskreview.core.editing.ops import DeleteLabels, LabelRef, Promote
        from maskreview.gui.edit_prompts import KEEP_BOTH, REPLACE, duplicates_in

        chosen = self.selected()
        if chosen is None:
            return None
        ref, pred, words = chosen
        if ref.field == GT:
            self.say("That label is already ground truth")
            return None
        duplicates = duplicates_in(pred, self.window.canvas.data.fields.get(GT, []))
        answer = self.prompts.duplicate_answer(pred, duplicates) if duplicates else KEEP_BOTH
        if answer is None:
            self.say("promote cancelled")
            return None
        if answer == REPLACE:
            gt, iou = duplicates[0]
            replaced = LabelRef(ref.sample_id, GT, gt.id)
            change = self.apply([DeleteLabels((replaced,)), Promote(ref, GT)],
                                f"promote {pred.label} prediction, replacing its ground truth (IoU {iou:.2f})")
            if change:
                self.say(f"promoted {words} to {GT}, replacing its ground truth (IoU {iou:.2f})")
            return change
        change = self.apply(Promote(ref, GT))
        if change:
            self.say(f"promoted {words} to {GT}")
        return change

    def set_tool(self, name: str | None) -> None:
        window = self.window
        window.canvas.set_tool(self.tools[name] if name else None)
        window.canvas.setFocus()  # the tool's keys ([ ], Enter, Esc, Backspace, Tab) go to the canvas
        for key, action in window.actions_.items():
            if key.startswith("tool_"):
                action.setChecked(key == f"tool_{name or 'pan'}")

    # ------------------------------------------------------------------ tagging and export
    def _tag_key_actions(self, menu) -> None:
        """One action per tag of the user's tag key map, on its bare key (one scheme: the digits 1-4 for
        the problem tags, R for reviewed); a key another action has is refused, not moved to another modifier."""
        from maskreview.core.errors import MaskreviewError
        from maskreview.core.tagging import load_tag_keys

        window = self.window
        try:
            keys = load_tag_keys()
        except MaskreviewError as exc:
            window.statusBar().showMessage(str(exc), 10000)
            from maskreview.core.tagging import DEFAULT_TAG_KEYS as keys
        taken = taken_shortcuts(window)
        self.tag_keys = keys
        for key, tag in keys.items():
            clash = QKeySequence(key).toString() in taken
            if clash:
                window.statusBar().showMessage(f"tag key {key!r} for '{tag}' is taken by another action: "
                                               "choose another in File ▸ Settings ▸ Keys", 10000)
            add_action(window, ActionSpec(f"tag_{tag}", f"Tag '{tag}'", () if clash else (key,), "Tags",
                                          tip=f"Toggle tag '{tag}' on the selected label, else the sample"),
                       lambda t=tag: self.tag_named(t), menu)

    def tag_named(self, tag: str | None):
        """Toggle ``tag`` on the selected label, else on the current sample; says which."""
        from maskreview.core.tagging import tag_op

        sid = self.window.current_sample_id
        if sid is None or not tag:
            return None
        chosen = self.selected() if self.state.selection is not None else None
        labels = [chosen[0]] if chosen is not None else None
        change = self.apply(tag_op(tag, [sid], labels))
        if change:
            self.say(f"tag '{tag}' toggled on " + (chosen[2] if chosen is not None else "the sample"))
        return change

    def tag_key(self, key: str):
        return self.tag_named(self.tag_keys.get(key))

    def update_review_progress(self) -> None:
        from maskreview.core.tagging import review_progress

        window = self.window
        if window.dataset is None:
            self.review_label.setText("")
            return
        done, total = review_progress(window.dataset)
        self.review_label.setText(f"samples reviewed {done}/{total}")

    def export_tagged(self):
        from maskreview.gui import workers
        from maskreview.gui.export_dialog import ExportDialog

        window = self.window
        if window.dataset is None:
            window.notify("Open a dataset first.")
            return None
        dialog = ExportDialog(window.dataset, window)
        if not dialog.exec():
            return None
        return window._start_job(workers.Job(dialog.job_fn(), "export"), lambda report: window.statusBar().showMessage(
            f"exported {report['samples']} samples, {report['annotations']} labels to {report['out']}", 10000))
