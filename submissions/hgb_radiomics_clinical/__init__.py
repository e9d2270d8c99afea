"""Gradient-boosted trees on radiomics, lesion context and clinical covariates (per-lesion PD)."""
