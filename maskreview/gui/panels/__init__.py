"""Dockable side panels: fields & classes, sample info, tags, class histogram (evaluation: its own module)."""
