"""What a deep submission builds on: the crop classifier (3D, or 2D on 2.5D views), networks
sized to the crops, and the training settings (``conf/train/default.yaml``). Imports torch."""

from benchmark.toolkit.crops import CropClassifier
from benchmark.toolkit.networks import build_with_input
from benchmark.toolkit.views import ViewClassifier
from benchmark.training import TrainSettings

__all__ = ["CropClassifier", "TrainSettings", "ViewClassifier", "build_with_input"]
