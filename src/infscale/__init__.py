"""infscale: a reproducible pipeline for compute-optimal inference (Wu et al. 2024)."""
