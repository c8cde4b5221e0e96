"""labelbench: measure which AI labeler, with which prompt, agrees with humans."""

__version__ = "0.1.0"
