"""Training-Free GRPO (arXiv 2510.08191): the learning loop (`loop`), the learner's semantic advantage
(`advantage`) and the worked cases it may keep (`cases`). Lesson curation itself is `memrl.library.curate`."""

from memrl.algos.tfgrpo.loop import rollout_group, run_tfgrpo

__all__ = ["rollout_group", "run_tfgrpo"]
