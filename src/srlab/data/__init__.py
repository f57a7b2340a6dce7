"""Training and benchmark data: image folders read once, Y channel cached in memory."""

from .folder import data_root, load_y_images, resolve_data_path
from .patches import PatchSampler
from .reference import CenterCropSampler

__all__ = ["data_root", "resolve_data_path", "load_y_images", "PatchSampler", "CenterCropSampler"]
