"""Test plugin: the tracking job kills itself (SIGKILL) as it creates its N-th MLflow run.

Python imports ``sitecustomize`` at start-up from the first folder on ``sys.path`` that holds one.
``tests/test_tracking.py`` (:func:`kill_tracking_after`) puts this folder on ``PYTHONPATH`` and sets
``ACTLAB_TEST_KILL_TRACKING_AFTER_RUNS=N`` for one Snakemake run. Only in the process of the
``track_claims`` job (Snakemake runs its script as ``python .snakemake/scripts/tmp....track_claims.py``)
is ``MlflowClient.create_run`` wrapped: once it has returned N times, the process dies at once, as
a job on a machine that fails would, leaving runs RUNNING. Every other process is left alone.
"""

import os
import sys

if os.environ.get("ACTLAB_TEST_KILL_TRACKING_AFTER_RUNS") and sys.argv[0].endswith("track_claims.py"):
    import itertools
    import signal

    from mlflow.tracking import MlflowClient

    kill_after = int(os.environ["ACTLAB_TEST_KILL_TRACKING_AFTER_RUNS"])
    created = itertools.count(1)
    create_run = MlflowClient.create_run

    def create_run_then_die(self, *args, **kwargs):
        run = create_run(self, *args, **kwargs)
        if next(created) == kill_after:
            os.kill(os.getpid(), signal.SIGKILL)
        return run

    MlflowClient.create_run = create_run_then_die
