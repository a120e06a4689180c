"""Figures, tables, scaling fits, the claims scorecard and the PRM-quality report. Imports from core and
evaluation."""
