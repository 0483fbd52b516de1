"""Victim training and metrics: what an unauthorized trainer would get from a release."""
from .metrics import classification_metrics, majority_floor
from .train import Recipe, train_victim

__all__ = ["Recipe", "classification_metrics", "majority_floor", "train_victim"]
