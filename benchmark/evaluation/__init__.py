"""The protocol (cross-validation, external cohorts) and the metrics that score it."""
