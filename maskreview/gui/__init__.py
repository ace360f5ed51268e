"""Qt layer of maskreview: renders core state and turns user actions into core calls.

Importing it changes nothing process-wide: :func:`maskreview.gui.runtime.prepare_process` does,
called by :func:`maskreview.gui.app.create_app`.
"""
