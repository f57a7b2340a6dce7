"""Training: configuration, schedules, the loop, and data-parallel helpers."""

from .config import ConfigError, TrainConfig, load_config
from .trainer import RunDirError, TrainingDiverged, train

__all__ = ["TrainConfig", "ConfigError", "load_config", "train", "TrainingDiverged", "RunDirError"]
