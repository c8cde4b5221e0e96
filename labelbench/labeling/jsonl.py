"""Planned requests and label rows as JSON lines (the CLI's input and output)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from labelbench.errors import InputError
from labelbench.labeling.runner import LabelResult
from labelbench.requests import PlannedRequest, RationaleRequest, ScoreRequest


def planned_to_dict(item: PlannedRequest) -> dict[str, Any]:
    kind = "rationale" if isinstance(item.request, RationaleRequest) else "score"
    request = asdict(item.request)
    request["answers"] = list(item.request.answers)
    return {
        "item_id": item.item_id,
        "variant": item.variant,
        "order": item.order,
        "kind": kind,
        "request": request,
    }


def planned_from_dict(data: dict[str, Any]) -> PlannedRequest:
    request_type = {"score": ScoreRequest, "rationale": RationaleRequest}[data["kind"]]
    fields = dict(data["request"])
    fields["answers"] = tuple(fields.get("answers", ("1", "2")))
    if data["order"] not in ("AB", "BA"):
        raise ValueError(f"order must be AB or BA, not {data['order']!r}")
    return PlannedRequest(data["item_id"], data["variant"], data["order"], request_type(**fields))


def write_planned(path: str | Path, planned: Sequence[PlannedRequest]) -> None:
    with open(path, "w", encoding="utf-8") as out:
        for item in planned:
            out.write(json.dumps(planned_to_dict(item), ensure_ascii=False) + "\n")


def read_planned(path: str | Path) -> list[PlannedRequest]:
    """The planned requests of a JSON-lines file; InputError naming the file, line and field."""
    from labelbench.data.sources import read_json_lines

    planned = []
    for place, value in read_json_lines(path):
        try:
            planned.append(planned_from_dict(value))
        except KeyError as error:
            raise place.error("missing in a planned request", field=str(error.args[0])) from None
        except (ValueError, TypeError) as error:
            raise place.error(f"not a planned request: {error}") from None
    if not planned:
        raise InputError(path, "holds no planned requests: nothing to label")
    return planned


def write_result(path: str | Path, result: LabelResult) -> None:
    """Rows as JSON lines at ``path``; accounting next to it as ``<stem>.accounting.json``."""
    path = Path(path)
    with open(path, "w", encoding="utf-8") as out:
        for record in result.records():
            out.write(json.dumps(record, sort_keys=True, ensure_ascii=False) + "\n")
    summary = {
        "wall_seconds": result.wall_seconds,
        "accounting": [asdict(a) for a in result.accounting],
    }
    path.with_suffix(".accounting.json").write_text(json.dumps(summary, indent=2) + "\n")
