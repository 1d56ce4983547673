"""Drift, data quality and model quality monitoring; monitors, alerts and reports."""
