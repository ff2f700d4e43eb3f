"""Fine-tuning (`train.fine_tune`): after the head has trained on a frozen backbone, a second phase
trains the backbone's top layers too, at a low learning rate with a fresh optimizer, as Keras'
transfer-learning guide does. BatchNormalization layers stay frozen and, because the backbone is
called with `training=False` (backbones.attach), keep using their ImageNet statistics.

The phases share one history and one best checkpoint; resume.json records the phase, so
`--resume` continues in either.

    phase 1: epochs 1 .. E (train.epochs, or fewer if early stopping stops)
    phase 2: epochs E+1 .. E+fine_tune.epochs
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import keras

from dlcli.models import model as model_mod

if TYPE_CHECKING:
    from dlcli.config.config import Config
    from dlcli.training.state import ResumeState


def phase_one_done(config: Config, prior: ResumeState | None) -> bool:
    """Whether the head's phase is over: every epoch of train.epochs done, or stopped early."""
    return prior is not None and (prior.epoch >= config.train.epochs or prior.stopped_early)


def finished(config: Config, prior: ResumeState) -> bool:
    """Whether nothing is left to train for a fine-tuned run."""
    fine = config.train.fine_tune
    if prior.phase != 2:
        return False
    return prior.epoch >= prior.phase_start + fine.epochs or prior.stopped_early


def backbone_of(model):
    found = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    if len(found) != 1:
        raise ValueError(f"expected one backbone in the model, found {len(found)}")
    return found[0]


def unfreeze(model, config: Config) -> int:
    """The backbone's top `unfreeze` layers trainable (BatchNormalization excepted); returns how many
    of its weight tensors now train."""
    base = backbone_of(model)
    count = config.train.fine_tune.unfreeze
    top = base.layers if count == "all" else base.layers[-count:]
    base.trainable = True
    for layer in base.layers:
        layer.trainable = layer in top and not isinstance(layer, keras.layers.BatchNormalization)
    return len(base.trainable_weights)


def compile_phase_two(model, config: Config, steps_per_execution: int) -> None:
    """Unfreeze and compile with a fresh optimizer at fine_tune.learning_rate (call in the strategy's
    scope)."""

    unfreeze(model, config)
    model_mod.compile_model(model, config, steps_per_execution, config.train.fine_tune.learning_rate)


def phase_two_prior(done: ResumeState) -> ResumeState:
    """Where phase 2 starts: after the last committed epoch, best value kept, early stopping afresh."""
    return replace(done, early_stopping=None, phase=2, phase_start=done.epoch)


def note(config: Config, model, first: int) -> str:
    fine = config.train.fine_tune
    base = backbone_of(model)
    which = "all layers" if fine.unfreeze == "all" else f"the top {fine.unfreeze} layers"
    return (
        f"fine-tuning {base.name}: {which} train (BatchNormalization frozen), learning rate "
        f"{fine.learning_rate:g}, epochs {first + 1}–{first + fine.epochs}"
    )
