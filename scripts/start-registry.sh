#!/usr/bin/env bash
# Start a Docker image registry (Debian's docker-registry, i.e. distribution v2) on
# 127.0.0.1:5000 in the background, if one is not already answering there. Idempotent.
# The pull-progress test (e2e/faults-*.test.ts) pushes the offline test image to it and
# has a worker pull it back through dockerd.
#
#   bash scripts/start-registry.sh
#
# Runs in the host network namespace (dockerd must reach it; the tests themselves run in a
# loopback-only namespace and talk to the registry only through dockerd). dockerd treats
# registries on 127.0.0.0/8 as insecure (plain HTTP) by default, so no dockerd flag is needed.
# Our own config: loopback only, no authentication (Debian's default config binds :5000 on
# every interface and asks for htpasswd credentials).
#
# Log: ${TMPDIR:-/tmp}/peerdock-registry.log
set -euo pipefail

ADDR=127.0.0.1:5000
STATE="${TMPDIR:-/tmp}/peerdock-registry"
LOG="${TMPDIR:-/tmp}/peerdock-registry.log"
TIMEOUT=30

answers() { # the registry's API root answers 200 with {} when it is up
  if command -v curl >/dev/null 2>&1; then
    curl -fsS --max-time 2 "http://$ADDR/v2/" >/dev/null 2>&1
  else
    # bash's /dev/tcp: send a request, look for an HTTP 200 status line
    timeout 3 bash -c "exec 3<>/dev/tcp/${ADDR%:*}/${ADDR#*:}; printf 'GET /v2/ HTTP/1.0\r\nHost: $ADDR\r\n\r\n' >&3; head -n1 <&3" 2>/dev/null | grep -q ' 200 '
  fi
}

if answers; then
  echo "start-registry: registry already answering on $ADDR"
  exit 0
fi

if ! command -v docker-registry >/dev/null 2>&1; then
  echo "start-registry: docker-registry not found (apt-get install docker-registry)" >&2
  exit 1
fi

mkdir -p "$STATE/data"
exec 9>"$STATE.lock"
flock -w $((TIMEOUT + 10)) 9 || { echo "start-registry: lock timeout" >&2; exit 1; }
if answers; then
  echo "start-registry: registry already answering on $ADDR"
  exit 0
fi

# The Debian package's own service (default config: all interfaces, htpasswd auth) may have
# been started by its postinst where an init system runs; it would hold port 5000.
if [ -x /etc/init.d/docker-registry ] && pgrep -x docker-registry >/dev/null 2>&1; then
  echo "start-registry: stopping the docker-registry service (Debian default config)"
  /etc/init.d/docker-registry stop >/dev/null 2>&1 || true
fi

cat >"$STATE/config.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $STATE/data
  delete:
    enabled: true
http:
  addr: $ADDR
EOF

echo "start-registry: starting docker-registry on $ADDR (log: $LOG)"
# Detached from the caller's pipes and from the lock (fd 9).
nohup docker-registry serve "$STATE/config.yml" </dev/null >>"$LOG" 2>&1 9>&- &
pid=$!

start=$SECONDS
while (( SECONDS - start < TIMEOUT )); do
  if answers; then
    echo "start-registry: registry ready after $(( SECONDS - start ))s (pid $pid)"
    exit 0
  fi
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "start-registry: docker-registry exited; last lines of $LOG:" >&2
    tail -n 20 "$LOG" >&2 || true
    exit 1
  fi
  sleep 0.3
done
echo "start-registry: registry not answering on $ADDR after ${TIMEOUT}s; last lines of $LOG:" >&2
tail -n 20 "$LOG" >&2 || true
exit 1
