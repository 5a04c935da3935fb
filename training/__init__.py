"""Command-line programs: `python -m training.train` (and, later, experiments)."""
