"""Training: a torchtitan-style base `Trainer` (loop, optimizer, EMA, checkpoints, DeepSpeed, metrics)
and the stage trainers built on it (`PretrainTrainer` for issue #4; RL and MetaQuery subclass the base).

Heavy modules load lazily: `from unipic.training import Trainer` imports torch but not diffusers.
"""

from unipic.training.trainer import StepOutput, Trainer, TrainResult

__all__ = ["StepOutput", "TrainResult", "Trainer"]
