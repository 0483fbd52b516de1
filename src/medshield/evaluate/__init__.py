"""Victim training and metrics: what an unauthorized trainer would get from a release."""
from . import purification  # noqa: F401  (registers the vae defense)
from .detection import detectability, detectability_gap
from .metrics import classification_metrics, majority_floor
from .train import Recipe, train_victim

__all__ = ["Recipe", "classification_metrics", "detectability", "detectability_gap", "majority_floor", "train_victim"]
