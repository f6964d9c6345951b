"""hybridzoo models: shared blocks assembled per layer from named mixers and a cycled pattern."""

from models.config import ModelConfig, load_model_config
from models.mixers.base import MixerConfig
from models.model import LM, build_model
from models.pretrained import is_pretrained_dir, load_pretrained, load_pretrained_config, save_pretrained

__all__ = [
    "LM",
    "MixerConfig",
    "ModelConfig",
    "build_model",
    "is_pretrained_dir",
    "load_model_config",
    "load_pretrained",
    "load_pretrained_config",
    "save_pretrained",
]
