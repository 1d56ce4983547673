"""Pipelines of cached Python steps, validation gates, triggers and sweeps."""
