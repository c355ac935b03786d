#!/usr/bin/env bash
# A real single-node Slurm cluster on this machine, for trying the scale-out recipes
# (docs/scale-out.md) and for tests/cli_resume_and_slurm.rs. Needs root and Debian's
# `slurm-wlm` and `munge` packages (apt-get install -y --no-install-recommends slurm-wlm munge).
#
#   scripts/slurm-local.sh [start] [DIR]   start the cluster whose files live in DIR
#                                          (default: a new temporary folder) and print
#                                          `export SLURM_CONF=DIR/slurm.conf`; when it is
#                                          already up, only print.
#   scripts/slurm-local.sh stop DIR        stop that cluster's slurmctld and slurmd.
#
# DIR holds slurm.conf, the state, spool, pid and log files; nothing else on the machine
# changes, except that munged (one per machine, shared by every cluster) is started when
# it is not running, and left running. Each DIR gets its own free ports, so clusters in
# different folders do not collide. Jobs run as the submitting user on this node.
# Exit: 0 up (or stopped), 1 a daemon did not come up (its log is printed), 2 usage/setup.
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"

cmd=start
case "${1:-}" in
    start | stop) cmd="$1"; shift ;;
esac
if [ "$#" -gt 1 ]; then
    echo "usage: scripts/slurm-local.sh [start|stop] [DIR]" >&2
    exit 2
fi
dir="${1:-}"

die() { echo "error: $*" >&2; exit 2; }

# A pid file's process, if it is still running.
alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

if [ "$cmd" = stop ]; then
    [ -n "$dir" ] || die "stop: give the cluster's folder: scripts/slurm-local.sh stop DIR"
    for d in slurmd slurmctld; do
        pidf="$dir/run/$d.pid"
        if alive "$pidf"; then
            pid="$(cat "$pidf")"
            kill "$pid" 2>/dev/null || true
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -9 "$pid" 2>/dev/null || true
        fi
        rm -f "$pidf"
    done
    echo "stopped the Slurm cluster in $dir"
    exit 0
fi

[ "$(id -u)" = 0 ] || die "a local Slurm needs root (slurmd runs jobs as their users); run as root"
for b in munged slurmctld slurmd sbatch scontrol sinfo; do
    command -v "$b" >/dev/null 2>&1 ||
        die "$b not found; install Slurm and munge: apt-get install -y --no-install-recommends slurm-wlm munge"
done

if [ -z "$dir" ]; then
    dir="$(mktemp -d "${TMPDIR:-/tmp}/rotbench-slurm.XXXXXX")"
fi
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
conf="$dir/slurm.conf"
host="$(hostname -s)"

# munged: one per machine. It refuses to start unless its folders belong to `munge`.
if ! munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; then
    id munge >/dev/null 2>&1 || die "no munge user; install munge: apt-get install -y munge"
    mkdir -p /run/munge /etc/munge /var/lib/munge /var/log/munge
    chown munge:munge /run/munge /etc/munge /var/lib/munge /var/log/munge
    chmod 0755 /run/munge
    if [ ! -s /etc/munge/munge.key ]; then
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 2>/dev/null
        chown munge:munge /etc/munge/munge.key
        chmod 0400 /etc/munge/munge.key
    fi
    su -s /bin/sh munge -c munged </dev/null >/dev/null 2>&1 || true
    for _ in $(seq 50); do
        munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1 && break
        sleep 0.1
    done
    munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1 ||
        die "munged did not start (see /var/log/munge/munged.log)"
fi

print_env() {
    echo "export SLURM_CONF=$conf"
}

# Already up: only say how to reach it.
if alive "$dir/run/slurmctld.pid" && alive "$dir/run/slurmd.pid" &&
    SLURM_CONF="$conf" timeout 10 scontrol ping >/dev/null 2>&1; then
    print_env
    exit 0
fi
# Half up (one daemon died): start both again.
for d in slurmd slurmctld; do
    if alive "$dir/run/$d.pid"; then kill "$(cat "$dir/run/$d.pid")" 2>/dev/null || true; fi
done
sleep 0.2

# Two free TCP ports from 6817 on (slurmctld, slurmd), skipping any that answer.
in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
port=6817
while in_use "$port" || in_use "$((port + 1))"; do
    port=$((port + 2))
    [ "$port" -lt 7817 ] || die "no two free TCP ports between 6817 and 7817"
done

mkdir -p "$dir/state" "$dir/spool" "$dir/run" "$dir/log"
# The node as slurmd sees it (CPUs, sockets, memory), else the nproc count.
node="$(slurmd -C 2>/dev/null | head -n 1 | grep '^NodeName=' || true)"
if [ -z "$node" ]; then
    node="NodeName=$host CPUs=$(nproc) RealMemory=2000"
fi
node="$(echo "$node" | sed -E "s/^NodeName=[^ ]+/NodeName=$host/") NodeAddr=127.0.0.1 State=UNKNOWN"
cat >"$conf" <<EOF
# Written by scripts/slurm-local.sh: a single-node cluster for local tests.
ClusterName=rotbench-local
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
MailProg=/bin/true
DependencyParameters=kill_invalid_depend
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/run/slurmctld.pid
SlurmdPidFile=$dir/run/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldTimeout=30
SlurmdTimeout=30
KillWait=5
MinJobAge=300
$node
PartitionName=local Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF

# -c: a clean start (no jobs from an earlier life of this folder). Both daemons fork
# into the background; their output goes to their log files, never to our caller.
export SLURM_CONF="$conf"
setsid slurmctld -c -f "$conf" </dev/null >>"$dir/log/slurmctld.out" 2>&1 || true
setsid slurmd -f "$conf" -N "$host" </dev/null >>"$dir/log/slurmd.out" 2>&1 || true

# Up when the node is idle (it accepts jobs).
for _ in $(seq 150); do
    state="$(timeout 5 sinfo -h -N -n "$host" -o '%T' 2>/dev/null || true)"
    case "$state" in idle* | mixed* | allocated*) print_env; exit 0 ;; esac
    sleep 0.2
done
echo "error: the Slurm node in $dir did not become idle within 30 s (state: ${state:-none}); logs:" >&2
tail -n 20 "$dir/log/"* >&2 || true
exit 1
