"""Dialogs for model runs: choose a model, fine-tune on reviewed samples, compare two models."""
