"""The loopline server: native REST API, MLflow-compatible API, web UI."""
