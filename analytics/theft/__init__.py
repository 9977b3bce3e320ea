"""Electricity-theft identification (supervised) and abnormal-consumption scoring (unsupervised)."""
