"""The callback that carries a Train run's reports to its Tune trial, in a module of its own
because Train's controller unpickles it: importing orchestrator.students there would import
torch, MLflow and the rest of the driver into every trial's controller: 2.6-3.1 s of each
trial's start on 2 cores, measured as that import after Ray Train's own."""

import time

from ray.tune.integration.ray_train import TuneReportCallback


class SyncedTuneReportCallback(TuneReportCallback):
    """TuneReportCallback that returns only once Tune has taken the report. Upstream returns
    as soon as the report is queued, so fit() can end before Tune took the final one; Tune's
    trainable then holds two results for a one-slot queue and deadlocks. That happens when
    the driver is slow to ask for results (say, while it retries an unreachable MLflow)."""

    def after_report(self, run_context, metrics, checkpoint) -> None:
        super().after_report(run_context, metrics, checkpoint)
        while not self._training_actor_item_queue.empty():
            time.sleep(0.2)
