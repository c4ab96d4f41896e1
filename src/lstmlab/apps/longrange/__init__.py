"""The long-range dependency lab: the 1997 LSTM experiments, and whether a plain RNN can do them."""
from .experiment import ExperimentConfig, run_one, write_report
from .tasks import TASKS

__all__ = ["ExperimentConfig", "run_one", "write_report", "TASKS"]
