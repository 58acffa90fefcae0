"""The data a trainer sees: sources loaded, checked against the trainer type, split for evaluation."""

from peftrun.data.loading import TrainingData, load_training_data

__all__ = ["TrainingData", "load_training_data"]
