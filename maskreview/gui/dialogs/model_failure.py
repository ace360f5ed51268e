"""The dialog for a model that cannot be loaded: the problem in the window's words, and a way on.

Core errors are worded for the command line ("pass --weights PATH", "--trust-checkpoint");
here they become buttons: "Choose weights file…" and, for a checkpoint that holds more than
tensors, "Trust this file and load it". Nothing was written when this shows (the model is
built before any field is touched).
"""

from __future__ import annotations

import re

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFileDialog, QMessageBox

# command-line hints in core messages -> what the window offers instead
_REWRITES = [
    (re.compile(r"\s*\((?:pass|use|give) --[^)]*\)"), ""),
    (re.compile(r"[;,]?\s*(?:and )?pass it with --weights PATH"), "; then choose it with “Choose weights file…”"),
    (re.compile(r"[;,]\s*(?:pass|use) --weights PATH"), ""),
    (re.compile(r"[;,]\s*pass --trust-checkpoint[^;.]*"), ""),
    (re.compile(r"[;,]?\s*(?:use|pass|see) ['\"]?(?:--[\w-]+|maskreview \w+)[^;.]*"), ""),
]


def gui_wording(message: str) -> str:
    for pattern, text in _REWRITES:
        message = pattern.sub(text, message)
    return re.sub(r"\s*--[\w-]+(?: [A-Z]+)?", "", message).strip()


def is_untrusted(error) -> bool:
    from maskreview.core.model.safe_loading import UntrustedCheckpointError  # UntrustedConfigError is one

    return isinstance(error, UntrustedCheckpointError)


class ModelFailureDialog(QMessageBox):
    """Non-modal; ``weights_chosen(path)`` or ``trust_chosen()`` when the user takes a way on."""

    weights_chosen = Signal(str)
    trust_chosen = Signal()
    other_model = Signal()  # the user wants to pick another model

    def __init__(self, model: str, error, parent=None, kept: str | None = None):
        super().__init__(QMessageBox.Icon.Warning, "Model not loaded", f"The model “{model}” could not be loaded.",
                         QMessageBox.StandardButton.Cancel, parent)
        self.setWindowModality(Qt.WindowModality.NonModal)
        still = f" The dataset keeps using “{kept}”." if kept else ""
        self.setInformativeText(gui_wording(str(error)) + "\n\nNo predictions were changed." + still)
        self.choose_button = self.addButton("Choose weights file…", QMessageBox.ButtonRole.ActionRole)
        self.other_button = self.addButton("Choose another model…", QMessageBox.ButtonRole.ActionRole)
        self.other_button.clicked.connect(self.other_model.emit)
        self.trust_button = None
        if is_untrusted(error):
            self.trust_button = self.addButton("Trust this file and load it", QMessageBox.ButtonRole.ActionRole)
            self.trust_button.setToolTip("Loading it runs whatever code the file holds: only for files you made "
                                         "or got from someone you trust")
        self.choose_button.clicked.connect(self._choose)
        if self.trust_button is not None:
            self.trust_button.clicked.connect(self.trust_chosen.emit)

    def _choose(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self.parentWidget(), "Choose weights file", "",
                                              "Weights (*.pth *.pkl);;All files (*)")
        if path:
            self.weights_chosen.emit(path)
