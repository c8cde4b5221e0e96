"""From per-order answer log-odds to one soft label per pair: named aggregation methods.

Notation (one labeler, one pair (A, B), shown in both orders):

- ``l_ab`` is the log-odds of A when A is shown first, log P(answer "A") - log P(answer "B")
  over the two answer tokens; ``l_ba`` the log-odds of A when A is shown second. Both come
  from the answer tokens' log-probabilities (``labelbench.labeling.runner.Preference``); for
  results written before those were kept they are recovered from the per-order P(A) with the
  logit, which is exact except where a probability saturated at 0 or 1.
- If the labeler adds a slot prior ``b`` to whichever response it sees first and the content
  adds ``d``, then ``l_ab = d + b`` and ``l_ba = d - b``: their mean is ``d`` exactly. This is
  the two-option case of PriDe (Zheng et al., "Large Language Models Are Not Robust Multiple
  Choice Selectors", ICLR 2024). With one order only, ``d`` is that order's log-odds.
- ``x = log((len_a + 1) / (len_b + 1))``, the log length ratio in characters.

Methods (``METHODS``; each says what it needs in ``NEEDS``):

``prob-mean``
    mean of the two orders' P(A): the RLAIF paper's (Lee et al. 2023) and the default. Needs
    nothing.
``logodds-mean``
    sigmoid(d). Needs nothing.
``calibrated``
    sigmoid(w d), one weight (an inverse temperature) fitted on human labels. The fit has no
    intercept, which is the same as fitting on order-symmetrised data (each pair also entered
    as (B, A) with the opposite label), so a data set's A/B label skew is never learned.
    ``status``: ``anti-informative`` when w's 95% interval (cluster-robust, by group) lies
    below 0 (the labeler prefers the response humans do not: calibration flips it, and the
    report says so), ``uninformative`` when the interval holds 0, else ``informative``.
``length-controlled``
    the preference at equal length: fit sigmoid(w d + v x) on human labels, report
    sigmoid(w d) (x = 0). Undefined ("n/a") when fewer than ``NEAR_EQUAL_MIN`` labelled pairs
    (and fewer than 5%) lie within ``NEAR_EQUAL`` of equal length: x = 0 would then be
    outside the observed length differences.
``stacked``
    sigmoid(w d + v x), the same fit with its length term kept; x is clipped to the range seen
    in fitting, so it never extrapolates.
``jury`` / ``jury+length``
    a logistic combiner over several labelers and/or variants, sigmoid(sum_k w_k d_k [+ v x]),
    fitted with an L2 penalty (C = 1 on features scaled to unit root-mean-square) and no
    intercept (Verga et al. 2024, "Replacing Judges with Juries", votes; here the weights are
    learned, since votes of correlated, uncalibrated judges add little).
``length-only``
    sigmoid(v x) fitted on human labels, no labeler at all: the reference a length-aware
    method must beat (what the data set's length preference alone gives).
``cascade``
    the labelers in order of recorded compute seconds per pair, each calibrated as above; the
    cheapest decides when its calibrated |w d| reaches a threshold, else the next is asked
    (Jung et al., ICLR 2025, "Trust or Escalate"). The threshold (one for every stage) is the
    one of ``CASCADE_THRESHOLDS`` with the best log-likelihood on the fitting labels. Its cost
    is the recorded seconds of every labeler asked.

Honest fitting: every method fitted on human labels is cross-fitted (``cross_fit``): the
items are cut into ``FOLDS`` folds by group (a TL;DR post, a dialogue context), and an item is
scored by a fit on the other folds only. ``n_fit`` is the number of labelled items a fit used
(the mean over folds). The parameters a user deploys (``Aggregation``, in ``winner.json``) are
fitted once on all labels; the cross-fitted figures estimate how well they do on new groups.

The code lives by concern: ``features`` (names, constants, ``Features``), ``deployed``
(``Aggregation``), ``fitting`` (fits, cross-fitting, ``deployable``) and ``quality`` (log-loss,
coverage, reliability, learning curves); every name is importable from ``labelbench.aggregate``.
"""

from __future__ import annotations

from labelbench.aggregate.deployed import Aggregation
from labelbench.aggregate.features import (
    C_JURY,
    C_SINGLE,
    CASCADE_THRESHOLDS,
    FOLDS,
    GROUP_METHODS,
    LOGIT_CLIP,
    METHODS,
    NEAR_EQUAL,
    NEAR_EQUAL_MIN,
    NEEDS,
    REFERENCE_METHODS,
    SINGLE_METHODS,
    Array,
    Features,
    SingleMethod,
    group_folds,
    length_ratio,
    logit,
    order_mean,
    sigmoid,
)
from labelbench.aggregate.fitting import (
    CrossFit,
    Fitted,
    cross_fit,
    deployable,
    fit,
    informativeness,
    predict,
    scored,
    undefined_reason,
    weight_interval,
)
from labelbench.aggregate.quality import (
    LEARNING_SIZES,
    coverage_curve,
    learning_curve,
    log_loss_terms,
    reliability_bins,
)

__all__ = [
    "CASCADE_THRESHOLDS",
    "C_JURY",
    "C_SINGLE",
    "FOLDS",
    "GROUP_METHODS",
    "LEARNING_SIZES",
    "LOGIT_CLIP",
    "METHODS",
    "NEAR_EQUAL",
    "NEAR_EQUAL_MIN",
    "NEEDS",
    "REFERENCE_METHODS",
    "SINGLE_METHODS",
    "Aggregation",
    "Array",
    "CrossFit",
    "Features",
    "Fitted",
    "SingleMethod",
    "coverage_curve",
    "cross_fit",
    "deployable",
    "fit",
    "group_folds",
    "informativeness",
    "learning_curve",
    "length_ratio",
    "log_loss_terms",
    "logit",
    "order_mean",
    "predict",
    "reliability_bins",
    "scored",
    "sigmoid",
    "undefined_reason",
    "weight_interval",
]
