#!/usr/bin/env bash
# Start a Docker engine (Debian's docker.io dockerd) in the background, if one
# is not already answering. Idempotent: safe to run any number of times.
#
#   bash scripts/start-dockerd.sh
#
# Log: ${TMPDIR:-/tmp}/peerdock-dockerd.log
#
# Notes on this machine kind (Debian 12, kernel 6.x, cgroup v1, root, no
# systemd managing services):
#  - Plain `dockerd` with no extra flags works: overlay2 storage on ext4,
#    Debian's default nf_tables iptables (iptables-nft) is accepted by
#    docker 20.10 and its NAT/FORWARD/isolation rules load fine, so the
#    default bridge, `docker network create --internal` and user bridges with
#    `-o com.docker.network.bridge.enable_icc=false` all work.
#  - The iptables backend is probed anyway: if the nf_tables backend is not
#    usable (some kernels lack nf_tables), we switch the alternative to
#    iptables-legacy; only if neither backend works do we fall back to
#    `--iptables=false` (then dockerd adds no NAT and no isolation rules, so
#    --internal/icc=false networks are NOT enforced by the firewall; a warning
#    is printed).
#  - Measured: an --internal network still gives its containers a route to
#    the bridge gateway (e.g. 172.18.0.1), and through it they reach host
#    services listening on 0.0.0.0 (not those bound to 127.0.0.1): bind
#    servers to 127.0.0.1.
#  - dockerd starts its own containerd (no system containerd service here).
#  - The socket is a filesystem path (/var/run/docker.sock), so clients in
#    another network namespace (`unshare -n ...`) still reach dockerd.
set -euo pipefail

LOG="${TMPDIR:-/tmp}/peerdock-dockerd.log"
SOCK=/var/run/docker.sock
TIMEOUT=60

if timeout 20 docker info >/dev/null 2>&1; then
  echo "start-dockerd: dockerd already running"
  exit 0
fi

if ! command -v dockerd >/dev/null 2>&1; then
  echo "start-dockerd: dockerd not found (apt-get install docker.io)" >&2
  exit 1
fi
if [ "$(id -u)" != 0 ]; then
  echo "start-dockerd: must run as root" >&2
  exit 1
fi

# Serialise concurrent callers (the second one then finds dockerd running).
exec 9>/var/run/peerdock-start-dockerd.lock
flock -w $((TIMEOUT + 30)) 9 || { echo "start-dockerd: lock timeout" >&2; exit 1; }
if timeout 20 docker info >/dev/null 2>&1; then
  echo "start-dockerd: dockerd already running"
  exit 0
fi

iptables_works() { # $1 = binary
  command -v "$1" >/dev/null 2>&1 &&
    "$1" -w -t nat -n -L >/dev/null 2>&1 &&
    "$1" -w -t filter -n -L >/dev/null 2>&1
}

EXTRA_FLAGS=()
if iptables_works iptables; then
  : # default backend (nf_tables on Debian 12) is fine
elif iptables_works iptables-legacy && command -v update-alternatives >/dev/null 2>&1; then
  echo "start-dockerd: iptables (nf_tables) unusable here, switching to iptables-legacy"
  update-alternatives --set iptables /usr/sbin/iptables-legacy >/dev/null
  update-alternatives --set ip6tables /usr/sbin/ip6tables-legacy >/dev/null 2>&1 || true
else
  echo "start-dockerd: WARNING: no working iptables; starting dockerd with --iptables=false" \
       "(no NAT, internal/icc=false networks not firewalled)" >&2
  EXTRA_FLAGS+=(--iptables=false)
fi

# dockerd needs the bridge netfilter module for icc=false on a bridge; load
# it if possible (harmless if built in or unavailable).
modprobe br_netfilter >/dev/null 2>&1 || true

# Is $1 a live (not zombie) process named $2? On these machines PID 1 does not
# always reap orphans, so a killed dockerd/containerd can linger as a zombie,
# which `kill -0` (and dockerd's own pid-file check) takes for a live process.
proc_alive() { # $1 = pid, $2 = comm ("" = any)
  local st
  [ -n "$1" ] && [ -r "/proc/$1/stat" ] || return 1
  [ -z "$2" ] || [ "$(cat "/proc/$1/comm" 2>/dev/null)" = "$2" ] || return 1
  st="$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)"
  [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}
dockerd_alive() { proc_alive "$1" dockerd; }

start_dockerd() {
  # Stale pid files from a killed (possibly zombie) dockerd/containerd make
  # dockerd refuse to start ("pid file found") or wait for a dead containerd.
  # Only removed when their process is gone; the socket is not touched
  # (dockerd replaces a stale one itself).
  local p
  p="$(cat /var/run/docker/containerd/containerd.pid 2>/dev/null || true)"
  proc_alive "$p" containerd || rm -f /var/run/docker/containerd/containerd.pid
  p="$(cat /var/run/docker.pid 2>/dev/null || true)"
  proc_alive "$p" dockerd || rm -f /var/run/docker.pid
  echo "start-dockerd: starting dockerd ${EXTRA_FLAGS[*]:-} (log: $LOG)"
  # stdin/stdout/stderr detached so that the caller's pipes close when it exits.
  # fd 9 (the lock) closed too, else dockerd, containerd and the shims keep it.
  nohup dockerd ${EXTRA_FLAGS[@]+"${EXTRA_FLAGS[@]}"} </dev/null >>"$LOG" 2>&1 9>&- &
  pid=$!
  started_here=1
}

pid="$(cat /var/run/docker.pid 2>/dev/null || true)"
started_here=0
if dockerd_alive "$pid"; then
  echo "start-dockerd: dockerd (pid $pid) already starting, waiting"
else
  start_dockerd
fi

start=$SECONDS
attempts=0
while (( SECONDS - start < TIMEOUT )); do
  if [ -S "$SOCK" ] && timeout 10 docker info >/dev/null 2>&1; then
    echo "start-dockerd: dockerd ready after $(( SECONDS - start ))s (pid $pid)"
    exit 0
  fi
  # Our own child is checked without its name: right after the fork it is
  # still "bash"/"nohup" until it execs dockerd.
  if { [ "$started_here" = 1 ] && ! proc_alive "$pid" ""; } ||
     { [ "$started_here" = 0 ] && ! dockerd_alive "$pid"; }; then
    if [ "$started_here" = 0 ]; then
      # the dockerd we were waiting for went away: start our own
      start_dockerd
      continue
    fi
    attempts=$((attempts + 1))
    if (( attempts < 3 )); then
      # e.g. a just-killed dockerd still held its databases: try again
      echo "start-dockerd: dockerd exited early (see $LOG), retrying" >&2
      sleep 2
      start_dockerd
      continue
    fi
    echo "start-dockerd: dockerd exited $attempts times" >&2
    break
  fi
  sleep 0.5
done

echo "start-dockerd: dockerd is not ready after $(( SECONDS - start ))s (limit ${TIMEOUT}s); last 50 lines of $LOG:" >&2
tail -n 50 "$LOG" >&2 || true
exit 1
