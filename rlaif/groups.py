"""The posts (group ids) a model was trained on, recorded in its folder, so that a judge is
never evaluated on, or compared with policies trained on, the posts it learned from.

``rlaif reward``, ``rlaif sft``, ``rlaif dpo`` and ``rlaif ppo`` write ``training_groups.json``
into the folder they save a model to (``TrainingGroups``). A policy's record includes the posts
of the model it started from, and a PPO policy's the posts of its reward model: a policy has
been trained, directly or through its reward, on every post of its record. ``rlaif evaluate``
refuses a reward-model judge whose record meets the evaluated prompts or the records of the
policies it compares (``check_judge``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from labelbench.errors import InputError

TRAINING_GROUPS_FILE = "training_groups.json"
"""The file in a model folder that lists the posts the model was trained on."""


@dataclass
class TrainingGroups:
    """What a saved model was trained on.

    ``command``: the rlaif command that trained it (``reward``, ``sft``, ``dpo``, ``ppo``);
    ``groups``: sorted, distinct group ids (TL;DR post ids; for other data, the context's group);
    ``complete``: False when part of the training data had no group ids (a dataset without a
    ``group_id`` column), so the list may miss posts;
    ``sources``: the files and folders the groups come from (data, starting model, reward model).
    """

    command: str
    groups: list[str] = field(default_factory=list)
    complete: bool = True
    sources: list[str] = field(default_factory=list)

    @classmethod
    def of(
        cls,
        command: str,
        groups: Iterable[str | None],
        sources: Iterable[str | Path] = (),
        *,
        complete: bool = True,
    ) -> TrainingGroups:
        """A record from group ids as the data has them (None: a row without one, which makes
        the record incomplete)."""
        values = list(groups)
        known = sorted({str(g) for g in values if g is not None and str(g) != ""})
        return cls(
            command=command,
            groups=known,
            complete=complete and len(known) > 0 and all(g not in (None, "") for g in values),
            sources=[str(s) for s in sources],
        )

    def including(self, other: TrainingGroups | None, source: str | Path) -> TrainingGroups:
        """This record with another model's posts added (the starting policy, the reward model).
        ``other`` None: that model has no record (a registry or Hub model, not trained on this
        project's data by rlaif); it is listed in ``sources`` as such and adds no posts."""
        if other is None:
            sources = [*self.sources, f"{source} (no record)"]
            return TrainingGroups(self.command, self.groups, self.complete, sources)
        return TrainingGroups(
            self.command,
            sorted(set(self.groups) | set(other.groups)),
            self.complete and other.complete,
            [*self.sources, str(source)],
        )

    def save(self, folder: Path) -> Path:
        """Write ``training_groups.json`` into ``folder`` (created); its path."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / TRAINING_GROUPS_FILE
        payload = {
            "command": self.command,
            "complete": self.complete,
            "n_groups": len(self.groups),
            "sources": self.sources,
            "groups": self.groups,
        }
        path.write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, folder: str | Path) -> TrainingGroups | None:
        """The record in a model folder; None when the folder has none (a model from the
        registry or the Hub, or one trained before records existed). InputError naming the file
        and field when it is malformed."""
        path = Path(folder) / TRAINING_GROUPS_FILE
        if not path.is_file():
            return None
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as error:
            raise InputError(path, f"cannot read the training posts: {error}") from None
        if not isinstance(payload, dict):
            raise InputError(path, "must be a JSON object")
        groups = payload.get("groups")
        if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
            raise InputError(path, "must be a list of group ids (strings)", field="groups")
        complete = payload.get("complete", False)
        if not isinstance(complete, bool):
            raise InputError(path, "must be true or false", field="complete")
        sources = payload.get("sources", [])
        if not isinstance(sources, list):
            raise InputError(path, "must be a list", field="sources")
        return cls(str(payload.get("command", "")), sorted(set(groups)), complete, sources)


def model_groups(model: str | Path) -> TrainingGroups | None:
    """The record of a model given by name or folder; None for a name (registry, Hub) or a
    folder without one."""
    path = Path(model)
    return TrainingGroups.load(path) if path.is_dir() else None


def check_judge(
    judge: Path,
    prompt_groups: Iterable[str],
    policies: dict[str, str | Path],
) -> tuple[TrainingGroups | None, list[str]]:
    """Refuse a reward-model judge that was trained on posts it would judge, or on posts the
    compared policies were trained on (``policies``: option name -> model name or folder).

    Returns the judge's record (None when it has none) and notes for the user (a record that is
    missing or incomplete cannot prove the judge independent). Raises InputError naming the
    judge, the option and the number of shared posts, with a few of them."""
    record = TrainingGroups.load(judge)
    notes: list[str] = []
    if record is None:
        notes.append(
            f"{judge} has no {TRAINING_GROUPS_FILE} (trained before rlaif recorded its posts?): "
            "its independence from the prompts and the policies cannot be checked"
        )
        return None, notes
    if not record.complete:
        notes.append(f"{judge}: its record of training posts is incomplete; checked what it lists")
    trained = set(record.groups)
    targets: list[tuple[str, set[str]]] = [("--prompts", set(prompt_groups))]
    for option, model in policies.items():
        groups = model_groups(model)
        if groups is not None:
            targets.append((option, set(groups.groups)))
    for option, groups in targets:
        shared = sorted(trained & groups)
        if shared:
            what = "evaluated prompts" if option == "--prompts" else f"posts {option} trained on"
            raise InputError(
                judge,
                f"not an independent judge: it was trained on {len(shared)} of the {what} "
                f"(e.g. {', '.join(shared[:3])}); train the judge on other posts "
                "(rlaif reward --split, --test-fraction)",
            )
    return record, notes
