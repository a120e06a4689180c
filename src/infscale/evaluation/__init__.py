"""Metrics of generated candidates: aggregation, FLOPs, PRM AUC, per-run metrics and the bootstrap over problems.
Imports only from core."""
