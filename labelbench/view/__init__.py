"""The item view: every labelled item of a run, with its texts, prompts and figures."""
