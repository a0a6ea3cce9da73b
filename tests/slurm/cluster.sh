#!/usr/bin/env bash
# A one-node Slurm cluster on this machine, for tests/slurm/check.sh: installs Debian's slurm-wlm
# and munge (no systemd here: a policy-rc.d that exits 101 keeps the packages from starting
# services), writes slurm.conf for this host's name and cores, and starts munged, slurmctld and
# slurmd. Idempotent: a running cluster is left as it is. Needs root (CI and our boxes run as root).
#   tests/slurm/cluster.sh start | stop
set -euo pipefail
action=${1:-start}
state=/tmp/cold-slurm
conf=/etc/slurm/slurm.conf

stop() {
  pkill -x slurmd 2>/dev/null || true
  pkill -x slurmctld 2>/dev/null || true
  pkill -x munged 2>/dev/null || true
}
if [ "$action" = stop ]; then stop; exit 0; fi

if ! command -v sbatch >/dev/null || ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  echo "cluster.sh: installing slurm-wlm and munge (Debian packages)" >&2
  if [ ! -x /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends slurm-wlm munge >/dev/null \
    || { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends slurm-wlm munge >/dev/null; }
fi

if scontrol ping 2>/dev/null | grep -q UP && sinfo -h -o %T 2>/dev/null | grep -qE 'idle|mix|alloc'; then
  echo "cluster.sh: cluster already up" >&2
  exit 0
fi
stop

host=$(hostname -s)
cpus=$(nproc)
mem=$(awk '/MemTotal/ {print int($2/1024*0.8)}' /proc/meminfo)
mkdir -p "$state"/{ctld,d,log} /run/munge /var/log/munge /var/lib/munge /etc/munge /etc/slurm
chown munge:munge /run/munge /var/log/munge /var/lib/munge /etc/munge 2>/dev/null || true
if [ ! -s /etc/munge/munge.key ]; then
  dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
fi
chown munge:munge /etc/munge/munge.key 2>/dev/null || true
chmod 400 /etc/munge/munge.key
cat > "$conf" <<CONF
# Written by tests/slurm/cluster.sh: a one-node cluster for cold's scheduler test.
ClusterName=cold-test
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
StateSaveLocation=$state/ctld
SlurmdSpoolDir=$state/d
SlurmctldPidFile=$state/slurmctld.pid
SlurmdPidFile=$state/slurmd.pid
SlurmctldLogFile=$state/log/slurmctld.log
SlurmdLogFile=$state/log/slurmd.log
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MaxArraySize=1001
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=test Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
CONF
# munged refuses to run as root unless forced; as the munge user where there is one.
if id munge >/dev/null 2>&1; then
  runuser -u munge -- /usr/sbin/munged
else
  /usr/sbin/munged --force
fi
slurmctld -f "$conf"
slurmd -f "$conf"
for _ in $(seq 1 30); do
  if sinfo -h -o %T 2>/dev/null | grep -qE '^(idle|mix|alloc)'; then
    echo "cluster.sh: one-node cluster up ($host, $cpus CPUs)" >&2
    exit 0
  fi
  sleep 1
done
echo "cluster.sh: the cluster did not come up; logs in $state/log" >&2
tail -20 "$state"/log/*.log >&2 || true
exit 1
