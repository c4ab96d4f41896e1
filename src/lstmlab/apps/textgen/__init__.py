"""Character-level text generation: corpus, model, training loop, sampling."""
from .config import ModelConfig, SampleConfig, TrainConfig
from .corpus import CorpusError, Vocabulary, builtin_corpus, read_corpus
from .model import CharSampler, build_model, sample_index
from .trainer import CheckpointError, Diverged, Progress, RunDir, TextTrainer, load_checkpoint

__all__ = ["ModelConfig", "SampleConfig", "TrainConfig", "CorpusError", "Vocabulary", "builtin_corpus",
           "read_corpus", "CharSampler", "build_model", "sample_index", "CheckpointError", "Diverged", "Progress",
           "RunDir", "TextTrainer", "load_checkpoint"]
