"""Answers that may use a tool: a short loop in which the model runs Python in the sandbox (`act:`)."""

from memrl.act.loop import Actor, Preload, transcript

__all__ = ["Actor", "Preload", "transcript"]
