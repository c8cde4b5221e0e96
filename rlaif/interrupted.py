"""What an interrupted ``rlaif`` command has kept: the one line printed after Ctrl-C."""

from __future__ import annotations

from collections.abc import Sequence

from labelbench.errors import interrupted_line
from rlaif.options import flag
from rlaif.ppo_config import PPOConfig


def _option_value(args: Sequence[str], flag: str) -> str | None:
    """The value given to ``flag`` in ``args`` (``--flag V`` or ``--flag=V``; the last one)."""
    value = None
    for index, arg in enumerate(args):
        if arg == flag and index + 1 < len(args):
            value = args[index + 1]
        elif arg.startswith(flag + "="):
            value = arg.partition("=")[2]
    return value


def rlaif_interrupted_line(args: Sequence[str]) -> str:
    """The one line printed after Ctrl-C in an ``rlaif`` command (``args``: its command line
    without the program name): what that command has kept, and how to go on."""
    command = next((arg for arg in args if not arg.startswith("-")), None)
    if command == "reward":
        return (
            "interrupted (Ctrl-C): nothing is saved (the reward model is written only at the "
            "end); run the command again to train from the start"
        )
    if command in ("sft", "dpo"):
        return (
            "interrupted (Ctrl-C): nothing is saved (the policy is written only at the end); "
            "run the command again to train from the start"
        )
    if command == "ppo":
        every = _option_value(args, flag(PPOConfig, "save_every"))
        if (every is not None and every.strip() not in ("", "0")) or "--resume" in args:
            return (
                "interrupted (Ctrl-C): the checkpoints saved so far are kept in --out; run the "
                "same command with --resume to continue from the last one"
            )
        return (
            "interrupted (Ctrl-C): no checkpoint is kept (without --save-every N one is saved "
            "only at the end); start again with a new --out, adding --save-every N to be able "
            "to --resume"
        )
    if command == "evaluate":
        return (
            "interrupted (Ctrl-C): no results are written before the end (a --labeler judge's "
            "labels stay in the label cache); run the same command again"
        )
    return interrupted_line(args)  # rlaif label: its labels are in the label cache
