"""RLAIF with the winning labeler: AI preference labels, a reward model (TRL's RewardTrainer with a
soft-label loss), a bundled PPO trainer, and evaluation against the starting policy.

Modules: ``label`` (preference datasets), ``reward_config``/``reward_trainer`` (reward model),
``rewards`` (PPO reward functions), ``ppo_config``/``ppo_trainer`` (PPO), ``evaluate`` (win rates),
``cli`` (the ``rlaif`` command).
"""
