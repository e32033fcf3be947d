"""Driver-side code: the CLI, spec validation, sweeps, MLflow tracking and promotion."""
