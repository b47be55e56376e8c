"""What the Snakemake rules call: the checks before any job runs, the job functions, code
digests (edits re-run jobs), the CPU kernels every job uses and unreadable results set aside."""
