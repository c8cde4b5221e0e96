"""RLAIF with the winning labeler: AI preference labels, a reward model (TRL's RewardTrainer with a
soft-label loss), a bundled PPO trainer, and evaluation against the starting policy.

Modules: ``data`` (reading comparisons and prompts), ``preferences`` (the preference dataset and
its builders), ``label`` (AI labels for given or sampled pairs), ``training_labels`` (which labels
a model trains on), ``reward`` (one reward-model run) over ``reward_config``/``reward_trainer``,
``reward_scoring`` (scoring responses with a reward model or a labeler's direct score, for PPO
and evaluate; not ``labelbench/rewards.py``, the client-side reward functions for TRL, verl and
OpenRLHF), ``ppo`` (one PPO run) over ``ppo_config``/``ppo_trainer``, ``evaluate`` (win rates),
``options`` (command-line options generated from the config dataclasses), ``cli`` (the ``rlaif``
command, wiring only).
"""
