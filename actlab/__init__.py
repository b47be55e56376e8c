"""actlab: a NumPy laboratory for claims about activation functions and initializations.

Four parts, each importing only the parts listed before it (``tests/test_layout.py``):

- :mod:`actlab.engine`: the NumPy MLP library (networks, activations, initializers, losses,
  optimizers, training, probes, data sets), usable alone;
- :mod:`actlab.claims`: the claims machinery (the register, the experiment types, judging,
  statistics, figures, the report, the preregistration ledger);
- :mod:`actlab.workflow`: what the Snakemake rules call (the checks before any job runs, the job
  functions, code digests, CPU kernels, unreadable results set aside);
- :mod:`actlab.tracking`: MLflow logging of every claim and cell a run judged.
"""

__version__ = "0.1.0"
