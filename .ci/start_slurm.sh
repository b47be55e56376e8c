#!/usr/bin/env bash
# A single-node SLURM on this machine, for tests/test_slurm.py: Debian's slurm-wlm and munge, no
# accounting daemon (so `sacct` cannot answer, as on many small clusters). Needs root.
# Idempotent: a second call finds the daemons up and only waits for the node.
set -euo pipefail

if ! command -v slurmctld >/dev/null; then
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q slurmctld slurmd slurm-client munge
fi

# The node line as slurmd sees this machine (name, CPUs, memory), and a default partition.
# MinJobAge keeps a finished job visible to `squeue` for 5 minutes, long enough for the executor
# plugin's status poll (profiles/slurm: slurm-status-command: squeue).
if [ ! -f /etc/slurm/slurm.conf ]; then
    node=$(slurmd -C | head -1)
    cat >/etc/slurm/slurm.conf <<EOF
ClusterName=actlab
SlurmctldHost=$(hostname -s)
AuthType=auth/munge
SlurmUser=slurm
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
MinJobAge=300
ReturnToService=2
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
$node State=UNKNOWN
PartitionName=main Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
fi
mkdir -p /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
chown slurm:slurm /var/spool/slurmctld /var/log/slurm

pgrep -x munged >/dev/null || /etc/init.d/munge start
pgrep -x slurmctld >/dev/null || slurmctld
pgrep -x slurmd >/dev/null || slurmd

for _ in $(seq 60); do
    if sinfo -h -o %t 2>/dev/null | grep -qE '^(idle|mix|alloc)'; then
        sinfo
        exit 0
    fi
    sleep 1
done
echo "SLURM did not come up; its logs:" >&2
tail -n 30 /var/log/slurm/slurmctld.log /var/log/slurm/slurmd.log >&2
exit 1
