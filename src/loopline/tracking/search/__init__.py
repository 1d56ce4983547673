"""Run search: MLflow's filter language parsed to an AST and compiled to SQL."""
