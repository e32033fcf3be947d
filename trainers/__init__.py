"""Worker-side numeric code: data, enhancement, models, distillation and the training loop.

Nothing here imports ``orchestrator``: a worker receives everything as a plain config.
"""
