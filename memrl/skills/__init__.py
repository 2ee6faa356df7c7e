"""Verified skills: reusable functions from the policy's own verified programs (see `library`)."""

from memrl.skills.library import Skill, SkillLibrary
from memrl.skills.source import SkillSource, calls, skill_source

__all__ = ["Skill", "SkillLibrary", "SkillSource", "calls", "skill_source"]
