"""The bundled trainer: the HarDNet recipe on the user's data, resumable, DDP and a worker pool.

Imports torch; the CLI imports this package only inside `hda train`/`evaluate`/`search-worker`.
"""

from hardnet_analysis.train.config import TrainConfig
from hardnet_analysis.train.loop import TrainResult, evaluate_model, train
from hardnet_analysis.train.pool import train_front

__all__ = ["TrainConfig", "TrainResult", "evaluate_model", "train", "train_front"]
