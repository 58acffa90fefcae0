#!/usr/bin/env bash
# A one-machine Slurm for the tests: munged, slurmctld and slurmd on this host (Debian's slurm-wlm).
# Idempotent: installs the packages only when missing, rewrites the config only when it changed, starts
# only the daemons that are not running, and returns once the node accepts jobs. Needs root.
#
# The node is this host with 2 CPUs (OverSubscribe so that two tasks fit even on a 1-core machine), and a
# requeued job waits 10 s before it starts again (cred_expire, 120 s by default); no
# cgroups (proctrack/linuxproc, task/none), so it runs in a container as well as on a laptop.
set -euo pipefail

CONF_DIR=/etc/slurm
STATE=/var/lib/peftrun-slurm
LOGS=/var/log/peftrun-slurm
NODE=$(hostname -s)

fail() { echo "setup_slurm: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || fail "needs root (it installs packages and starts daemons)"

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null; then
    command -v apt-get >/dev/null || fail "slurm-wlm and munge are not installed and there is no apt-get"
    echo "setup_slurm: installing slurm-wlm and munge" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    apt-get install -y -q slurm-wlm munge >/dev/null
fi

mkdir -p "$CONF_DIR" "$STATE/ctld" "$STATE/d" "$LOGS" /run/munge /var/lib/munge /var/log/munge
chown munge:munge /run/munge /var/lib/munge /var/log/munge 2>/dev/null || true

if [ ! -s /etc/munge/munge.key ]; then
    mkdir -p /etc/munge
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
fi
chown munge:munge /etc/munge/munge.key 2>/dev/null || true
chmod 400 /etc/munge/munge.key

CONF=$(cat <<EOF
# written by peftrun's scripts/setup_slurm.sh: a one-machine cluster for tests
ClusterName=peftrun-test
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=cred_expire=10
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$LOGS/slurmctld.log
SlurmdLogFile=$LOGS/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
JobRequeue=1
MpiDefault=none
SlurmctldTimeout=30
SlurmdTimeout=30
KillWait=30
SuspendProgram=/bin/true
ResumeProgram=/bin/true
SuspendTime=INFINITE
ResumeTimeout=60
GresTypes=gpu
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=2 Boards=1 SocketsPerBoard=1 CoresPerSocket=2 ThreadsPerCore=1 RealMemory=1000 State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
# GPU nodes that exist only in the config (CLOUD: powered down, never resumed since no job is sent there): sbatch --test-only checks GPU jobs of several nodes against them
NodeName=gpu[1-4] CPUs=64 RealMemory=512000 Gres=gpu:8 State=CLOUD
PartitionName=gpu Nodes=gpu[1-4] MaxTime=INFINITE State=UP
EOF
)
GRES="NodeName=gpu[1-4] Name=gpu Count=8"
if [ "$(cat "$CONF_DIR/slurm.conf" 2>/dev/null)" != "$CONF" ] || [ "$(cat "$CONF_DIR/gres.conf" 2>/dev/null)" != "$GRES" ]; then
    printf '%s\n' "$CONF" > "$CONF_DIR/slurm.conf"
    printf '%s\n' "$GRES" > "$CONF_DIR/gres.conf"
    CHANGED=1
else
    CHANGED=0
fi

running() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

if ! pgrep -x munged >/dev/null; then
    /usr/sbin/munged --force || fail "munged did not start (see /var/log/munge/munged.log)"
fi
if [ "$CHANGED" = 1 ]; then  # a new config: restart what runs with the old one
    for pid in "$STATE/slurmd.pid" "$STATE/slurmctld.pid"; do
        if running "$pid"; then kill "$(cat "$pid")"; sleep 1; fi
    done
fi
CLEAR=$([ "$CHANGED" = 1 ] && echo -c || true)  # a new config starts from a clean state (node states are kept otherwise)
running "$STATE/slurmctld.pid" || /usr/sbin/slurmctld -i $CLEAR || fail "slurmctld did not start (see $LOGS/slurmctld.log)"
running "$STATE/slurmd.pid" || /usr/sbin/slurmd || fail "slurmd did not start (see $LOGS/slurmd.log)"

for _ in $(seq 1 60); do
    state=$(sinfo -h -N -n "$NODE" -o %t 2>/dev/null || true)
    case "$state" in
        idle*|mix*|alloc*) echo "setup_slurm: node $NODE is $state" >&2; exit 0 ;;
        down*|drain*) scontrol update NodeName="$NODE" State=RESUME >/dev/null 2>&1 || true ;;
    esac
    sleep 1
done
fail "node $NODE did not become idle (state: ${state:-none}); see $LOGS/slurmctld.log and $LOGS/slurmd.log"
