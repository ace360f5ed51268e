"""The Model dock (hidden at first): the model's internals for the sample under review."""

from __future__ import annotations

from PySide6.QtWidgets import QScrollArea

from maskreview.core.fields import GT_FIELD

GT = GT_FIELD


class ModelPanelFeature:
    def __init__(self, window, state):
        from maskreview.gui.panels.model_panel import ModelPanel

        self.window, self.state = window, state
        self.panel = panel = ModelPanel()
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(panel)
        dock = window.add_dock(scroll, "Model", "right")
        window.tabifyDockWidget(window.docks["Sample"], dock)
        dock.hide()
        window.docks["Sample"].raise_()
        dock.visibilityChanged.connect(self._visible)
        window.sample_changed.connect(lambda sid: self._show_image())

    def _visible(self, visible: bool) -> None:
        if visible:
            self._show_image()

    def _show_image(self) -> None:
        window = self.window
        dock, data = window.docks.get("Model"), window.canvas.data
        if dock is None or not dock.isVisible() or data is None or data.image is None:
            return
        panel = self.panel
        runs = getattr(window, "model_runs", None)  # the model is loaded in the worker process, not here
        panel.set_model(window.model_name, runs.weights if runs is not None else None, window.engine_settings,
                        runs.trust_checkpoint if runs is not None else False)
        gt = None
        if data.sample_id is not None and window.dataset is not None and GT in window.label_fields:
            gt = window.dataset[data.sample_id][GT]
        if getattr(panel, "_sample_id", None) != data.sample_id or data.sample_id is None:
            panel.set_image(data.sample_id, data.image, gt, path=data.filepath)
