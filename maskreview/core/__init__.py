"""Qt-free core of maskreview: data, masks, models, evaluation and edits.

Nothing under ``maskreview.core`` imports Qt. The CLI, the GUI and most tests drive it.
"""
