"""What every application's runs share: the run directory, checkpoints that lose nothing, the CSV log and the
learning curves, stop signals and the divergence guard (text generation, forecasting, classification)."""
from .checkpoints import CheckpointError, checkpoint_step, read_checkpoint, repair_interrupted_writes, save_checkpoint
from .logs import log_text, plot_curves, read_text, write_log
from .rundir import Progress, RunDir, run_checkpoint
from .signals import Diverged, RunTrainer, divergence_guard, install_stop_handlers

__all__ = ["CheckpointError", "checkpoint_step", "read_checkpoint", "repair_interrupted_writes", "save_checkpoint",
           "log_text", "plot_curves", "read_text", "write_log", "Progress", "RunDir", "run_checkpoint", "Diverged",
           "RunTrainer", "divergence_guard", "install_stop_handlers"]
