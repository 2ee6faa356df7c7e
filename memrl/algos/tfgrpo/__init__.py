"""Training-Free GRPO (arXiv 2510.08191): the learning loop (`loop`), what a rollout sees (`learning`), the
learner's semantic advantage (`advantage`), the worked cases it may keep (`cases`), the no-harm gate (`gate`)
and the step metrics (`metrics`). Lesson curation itself is `memrl.library.curate`."""

from memrl.algos.tfgrpo.learning import rollout_group
from memrl.algos.tfgrpo.loop import run_tfgrpo

__all__ = ["rollout_group", "run_tfgrpo"]
