"""Qt layer of maskreview: renders core state and turns user actions into core calls."""
