"""The names of the files in a run folder, and the layout version of each JSON file."""

CONFIG = "config.yaml"
RESULTS, RESULTS_JSONL = "results.parquet", "results.jsonl"  # JSON Lines: read, never written
RESULT_FILES = (RESULTS, RESULTS_JSONL)
RUN_RECORD = "run.json"
SUMMARY, TIMING, WINNER = "summary.json", "timing.json", "winner.json"
REPORT_MD, REPORT_HTML, PLOTS = "report.md", "report.html", "plots"
ITEMS_HTML = "items.html"

SUMMARY_SCHEMA = 1
TIMING_SCHEMA = 2
WINNER_SCHEMA = 1
RUN_SCHEMA = 1
