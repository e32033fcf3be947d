"""`python -m orchestrator ...` = `dlkdd ...` (what a Ray Job's entrypoint runs)."""

from orchestrator.cli import app

app()
