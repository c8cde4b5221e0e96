"""Metrics, tables and figures of a benchmark run (``labelbench report RUN_DIR``).

A run folder holds ``results.parquet`` (``labelbench.rundir.ResultRow``) and ``config.yaml``
(the validated run config). The report writes (each file's model is in ``labelbench.rundir``):

- ``summary.json``: every figure, per data set x labeler x variant and for the baselines
  (always-first, always-longer, random, published judges) and the human ceiling. It depends
  only on the results table and the config: rows are sorted, bootstrap resamples are seeded
  from the run seed and the cell's names, and no clock value enters it, so the same labels give
  the same bytes.
- ``timing.json``: seconds, seconds per pair and pairs per second. Wall-clock figures differ
  from run to run, so they are kept out of ``summary.json``.
- ``winner.json``: the best (labeler, variant) by accuracy, within the config's cost budget;
  the RLAIF trainer reads it. It holds timing only when the budget limits seconds per pair, and
  whether the winner beats always-longer, always-first and the human ceiling
  (``labelbench.report.verdict``).
- ``report.md`` with ``plots/*.png``, and ``report.html``, one self-contained page (figures
  embedded as PNG data).
"""
