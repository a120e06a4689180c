"""The lowest layer: config and planning queries, the step format, grading, data sets, models, files and job
plumbing. Imports nothing from the other parts (tests/test_layering.py)."""
