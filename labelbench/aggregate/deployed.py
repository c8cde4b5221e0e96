"""An aggregation as deployed (``winner.json`` ``aggregation``): the method, its parameters
fitted on all human labels, and its soft labels for new pairs."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from labelbench.aggregate.features import (
    LOGIT_CLIP,
    NEEDS,
    Array,
    SingleMethod,
    length_ratio,
    logit,
    order_mean,
    sigmoid,
)


class Aggregation(BaseModel):
    """One labeler's aggregation as deployed (``winner.json`` ``aggregation``): the method and
    its parameters fitted on all human labels of ``fitted_on``. ``soft_labels`` applies it."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    method: SingleMethod = Field(description="one of labelbench.aggregate.SINGLE_METHODS")
    weight: float | None = Field(
        default=None, description="w, on the order-averaged log-odds d (fitted methods)"
    )
    length_weight: float | None = Field(
        default=None, description="v, on x = log((len_a+1)/(len_b+1)) (stacked)"
    )
    length_range: tuple[float, float] | None = Field(
        default=None, description="x is clipped to this range (seen in fitting)"
    )
    status: Literal["informative", "uninformative", "anti-informative"] | None = Field(
        default=None, description="informative, uninformative or anti-informative (fitted)"
    )
    n_fit: int = Field(default=0, ge=0, description="human labels the parameters were fitted on")
    fitted_on: list[str] = Field(default_factory=list, description="data sets of those labels")

    @field_validator("weight", "length_weight", "length_range", mode="before")
    @classmethod
    def _numbers_not_booleans(cls, value: object) -> object:
        values = value if isinstance(value, list | tuple) else [value]
        if any(isinstance(v, bool) for v in values):
            raise ValueError("must be a number, not true or false")
        return value

    @model_validator(mode="after")
    def _parameters_present(self) -> Aggregation:
        if NEEDS[self.method] != "nothing" and self.weight is None:
            raise ValueError(f"{self.method} needs its fitted weight ('weight')")
        if self.method == "stacked" and self.length_weight is None:
            raise ValueError("stacked needs its fitted length weight ('length_weight')")
        unused = {
            "weight": NEEDS[self.method] == "nothing",
            "length_weight": self.method != "stacked",
            "length_range": self.method != "stacked",
        }
        for name, refused in unused.items():
            if refused and getattr(self, name) is not None:
                raise ValueError(f"{self.method} takes no '{name}' (it would be ignored)")
        if self.length_range is not None and self.length_range[0] > self.length_range[1]:
            raise ValueError("length_range must be [low, high] with low <= high")
        return self

    def caveat(self) -> str | None:
        """One sentence when these labels are not the labeler's judgement: its fitted weight is
        below 0 (anti-informative: the labels reverse its choices) or not distinguishable from 0
        (uninformative: the labels are near 1/2, or, for ``stacked``, mostly the length rule).
        None otherwise."""
        if self.status == "anti-informative":
            return (
                f"the {self.method} labels reverse the labeler's choices (its fitted weight "
                f"{self.weight:.3g} is below 0 with 95% confidence)"
            )
        if self.status == "uninformative":
            if self.method == "stacked":
                return (
                    "the labeler's weight in the stacked labels is not distinguishable from 0: "
                    "they are mostly the length rule"
                )
            return (
                f"the labeler's {self.method} weight ({self.weight:.3g}) is not distinguishable "
                "from 0: its labels carry no measured signal"
            )
        return None

    def soft_labels(
        self,
        p_ab: Array,
        p_ba: Array,
        logodds_ab: Array | None = None,
        logodds_ba: Array | None = None,
        len_a: Array | None = None,
        len_b: Array | None = None,
    ) -> Array:
        """P(A) per item (NaN = unscored) from the per-order P(A) and log-odds of A (n,) each;
        log-odds missing (None or NaN) are recovered from the P(A) with the logit. ``stacked``
        needs the lengths (characters). Raises ValueError when it does not have them."""
        p_ab, p_ba = np.asarray(p_ab, float), np.asarray(p_ba, float)
        if self.method == "prob-mean":
            return order_mean(p_ab, p_ba)
        l_ab = _logodds(logodds_ab, p_ab)
        l_ba = _logodds(logodds_ba, p_ba)
        d = order_mean(l_ab, l_ba)
        if self.method == "logodds-mean":
            return sigmoid(d)
        if self.weight is None:
            raise ValueError(f"aggregation {self.method} has no fitted weight")
        z = self.weight * d
        if self.method == "stacked":
            if len_a is None or len_b is None or self.length_weight is None:
                raise ValueError("the stacked aggregation needs both responses' lengths")
            x = length_ratio(len_a, len_b)
            if self.length_range is not None:
                x = np.clip(x, *self.length_range)
            z = z + self.length_weight * x
        return sigmoid(z)


def _logodds(given: Array | None, p: Array) -> Array:
    recovered = logit(p)
    if given is None:
        return recovered
    given = np.asarray(given, float)
    return np.where(np.isnan(given), recovered, np.clip(given, -LOGIT_CLIP, LOGIT_CLIP))
