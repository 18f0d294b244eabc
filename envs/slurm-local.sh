#!/usr/bin/env bash
# A one-node Slurm on this machine, for testing profiles/slurm end to end (tests/workflow/test_slurm.py).
#
#   sudo envs/slurm-local.sh [start]   install slurm-wlm + munge if missing, write a minimal slurm.conf
#                                      sized from `slurmd -C`, start munged, slurmctld, slurmd; wait idle
#   sudo envs/slurm-local.sh status    daemons (PID files) and `sinfo`; exit 1 if a daemon is down
#   sudo envs/slurm-local.sh stop      stop the three daemons by their recorded PIDs
#
# Idempotent: `start` on a running cluster changes nothing. Needs root (Debian/Ubuntu, apt-get).
# Everything lives under $SLURM_LOCAL_DIR (default /var/lib/slurm-local): state, spool, logs and the
# PID files. The config goes to /etc/slurm/slurm.conf (where the Slurm clients look) and is refused if a
# slurm.conf this script did not write is already there: that machine has a real cluster.
# One partition, $SLURM_LOCAL_PARTITION (default `local`), default for every job; no accounting
# (no slurmdbd), so Snakemake must query job states with squeue (--slurm-status-command squeue).
set -euo pipefail

STATE=${SLURM_LOCAL_DIR:-/var/lib/slurm-local}
PARTITION=${SLURM_LOCAL_PARTITION:-local}
CONF=/etc/slurm/slurm.conf
MARK="# written by envs/slurm-local.sh"
MUNGE_PID=$STATE/munged.pid
CTLD_PID=$STATE/slurmctld.pid
SLURMD_PID=$STATE/slurmd.pid

die() { echo "slurm-local: $*" >&2; exit 1; }
alive() { [[ -s $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

require_root() { [[ $(id -u) == 0 ]] || die "run as root (it installs packages and starts daemons)"; }

install_packages() {
    command -v slurmctld >/dev/null && command -v munged >/dev/null && return 0
    command -v apt-get >/dev/null || die "slurm-wlm/munge are missing and apt-get is not available"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q slurm-wlm munge >/dev/null || { apt-get update -q >/dev/null; apt-get install -y -q slurm-wlm munge >/dev/null; }
}

munge_key() {
    [[ -s /etc/munge/munge.key ]] && return 0
    # the package normally creates it; a bare image may not
    mungekey --create --keyfile=/etc/munge/munge.key 2>/dev/null \
        || dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
    chown munge:munge /etc/munge/munge.key
    chmod 0400 /etc/munge/munge.key
}

# NodeName line from `slurmd -C` with RealMemory lowered by 10 % (at least 512 MB) so that slurmd's own
# memory and the OS do not make the node fail its registration check.
node_line() {
    local line mem margin
    line=$(slurmd -C | head -n 1)
    [[ $line == NodeName=* ]] || die "unexpected 'slurmd -C' output: $line"
    mem=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$line")
    margin=$(( mem / 10 > 512 ? mem / 10 : 512 ))
    sed "s/RealMemory=[0-9]*/RealMemory=$(( mem - margin ))/; s/ UpTime=.*//" <<<"$line"
}

write_conf() {
    local host node
    host=$(hostname -s)
    node=$(node_line)
    if [[ -e $CONF ]] && ! grep -qF "$MARK" "$CONF"; then
        die "$CONF exists and was not written by this script (a real cluster?); not touching it"
    fi
    mkdir -p /etc/slurm "$STATE/ctld" "$STATE/spool" "$STATE/log"
    cat >"$CONF.new" <<CONF
$MARK (one node, no accounting; regenerate with: envs/slurm-local.sh stop && envs/slurm-local.sh start)
ClusterName=local
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$CTLD_PID
SlurmdPidFile=$SLURMD_PID
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
ReturnToService=2
# finished jobs stay visible to squeue for 10 min: without slurmdbd that is how Snakemake's slurm
# plugin sees COMPLETED/FAILED (it falls back to sacct when MinJobAge < 3x its status interval)
MinJobAge=600
$node State=UNKNOWN
PartitionName=$PARTITION Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
    if cmp -s "$CONF.new" "$CONF"; then rm -f "$CONF.new"; else mv "$CONF.new" "$CONF"; CONF_CHANGED=1; fi
}

start_munge() {
    alive "$MUNGE_PID" && return 0
    munge_key
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    chown munge:munge /run/munge /var/log/munge /var/lib/munge
    # munged refuses to run as root; it writes its PID file as the munge user
    touch "$MUNGE_PID" && chown munge:munge "$MUNGE_PID"
    su -s /bin/sh munge -c "/usr/sbin/munged --pid-file=$MUNGE_PID --force"
}

wait_idle() {
    local state=""
    for _ in $(seq 60); do
        state=$(sinfo -h -o %T 2>/dev/null | head -n 1)
        case $state in idle*|mixed*|allocated*) echo "slurm-local: node $state, partition $PARTITION"; return 0 ;; esac
        if [[ $state == down* || $state == drain* ]]; then
            scontrol update NodeName="$(hostname -s)" State=RESUME 2>/dev/null || true
        fi
        sleep 0.5
    done
    die "node not idle after 30 s (state: ${state:-none}); see $STATE/log/"
}

start() {
    require_root
    install_packages
    CONF_CHANGED=0
    write_conf
    if [[ $CONF_CHANGED == 1 ]] && { alive "$CTLD_PID" || alive "$SLURMD_PID"; }; then
        echo "slurm-local: slurm.conf changed; restarting slurmctld and slurmd"
        stop_pidfiles "$SLURMD_PID" "$CTLD_PID"
    fi
    start_munge
    alive "$CTLD_PID" || slurmctld
    alive "$SLURMD_PID" || slurmd
    wait_idle
}

stop_pidfiles() {
    local pidfile pid
    for pidfile in "$@"; do
        alive "$pidfile" || continue
        pid=$(cat "$pidfile")
        kill "$pid"
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        kill -0 "$pid" 2>/dev/null && die "PID $pid ($pidfile) did not stop"
        rm -f "$pidfile"
    done
}

stop() {
    stop_pidfiles "$SLURMD_PID" "$CTLD_PID" "$MUNGE_PID"
    echo "slurm-local: stopped"
}

status() {
    local down=0 pidfile
    for pidfile in "$MUNGE_PID" "$CTLD_PID" "$SLURMD_PID"; do
        if alive "$pidfile"; then echo "$(basename "$pidfile" .pid): running, PID $(cat "$pidfile")"
        else echo "$(basename "$pidfile" .pid): not running"; down=1; fi
    done
    [[ $down == 0 ]] && sinfo
    return $down
}

case ${1:-start} in
    start) start ;;
    stop) stop ;;
    status) status ;;
    *) die "unknown command '$1'; allowed: start, stop, status" ;;
esac
