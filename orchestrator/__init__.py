"""Driver-side code: the CLI, spec validation, sweeps, MLflow tracking and promotion."""

import os

# Ray's log deduplication holds repeated worker lines back and prints them when the driver
# exits, after `dlkdd sweep` has given the terminal back (orchestrator/quiet.py): each line
# goes to the log as it arrives instead. Read by Ray at import, so set before it.
os.environ.setdefault("RAY_DEDUP_LOGS", "0")
