"""The inference server, deployments and prediction logging."""
