#!/usr/bin/env bash
# NAT lab: two private LANs, each behind its own NAT router, joined by a "public" segment that
# holds coturn and the signaling server. Network namespaces and veth pairs only: every address
# below lives inside namespaces this script creates; nothing is routed off the machine and no
# interface of the host is touched. Needs root, iproute2 and iptables.
#
#   bash nat-lab/lab.sh up   PREFIX     build  PREFIX-{pub,nata,lana,natb,lanb}
#   bash nat-lab/lab.sh nat  PREFIX a|b cone|symmetric
#   bash nat-lab/lab.sh down PREFIX     kill what runs inside them, delete them (idempotent)
#   bash nat-lab/lab.sh exec PREFIX NS CMD...   run CMD inside PREFIX-NS
#
#                         PREFIX-pub  (forwards between its two links)
#             198.51.100.1/24 ─┘   └─ 203.0.113.1/24       coturn :3478, signaling on 198.51.100.1
#                 │                         │
#   PREFIX-nata  wan 198.51.100.2      wan 203.0.113.2  PREFIX-natb    MASQUERADE out of wan
#                lan 10.1.0.1          lan 10.2.0.1                    (--random-fully: symmetric)
#                 │                         │
#   PREFIX-lana  10.1.0.2 (worker)     10.2.0.2 (client)  PREFIX-lanb
#
# The "public" addresses are the documentation ranges TEST-NET-2/3, so coturn can deny every
# private range as relay peer (as a real deployment must) and still relay between the two NATs.
# Measured pitfalls (shared/design.md): the routers need `iptables -P INPUT DROP`; ip_forward and
# rp_filter are set explicitly in every namespace (their defaults vary with the kernel).
set -euo pipefail

cmd="${1:-}"
prefix="${2:-}"
[ -n "$cmd" ] && [ -n "$prefix" ] || { sed -n '2,12p' "$0" >&2; exit 2; }
[[ "$prefix" =~ ^[a-z0-9]{2,10}$ ]] || { echo "lab.sh: PREFIX must be 2-10 lowercase letters/digits" >&2; exit 2; }
NAMESPACES=(pub nata lana natb lanb)

ns() { echo "$prefix-$1"; }
in_ns() { local n="$1"; shift; ip netns exec "$(ns "$n")" "$@"; }

down() {
  local n name pids
  for n in "${NAMESPACES[@]}"; do
    name="$(ns "$n")"
    ip netns list 2>/dev/null | grep -qw "^$name" || continue
    # Only processes inside the lab's own namespaces, i.e. those the lab's user started there.
    pids="$(ip netns pids "$name" 2>/dev/null || true)"
    [ -z "$pids" ] || kill -TERM $pids 2>/dev/null || true
  done
  sleep 0.3
  for n in "${NAMESPACES[@]}"; do
    name="$(ns "$n")"
    ip netns list 2>/dev/null | grep -qw "^$name" || continue
    pids="$(ip netns pids "$name" 2>/dev/null || true)"
    [ -z "$pids" ] || kill -KILL $pids 2>/dev/null || true
    ip netns del "$name" 2>/dev/null || true
  done
}

set_nat() { # router(a|b) mode(cone|symmetric)
  local router="nat$1" mode="$2" random=()
  case "$mode" in
    cone) ;;                             # endpoint-independent mapping (ports kept when free)
    symmetric) random=(--random-fully) ;; # a new random port for every destination
    *) echo "lab.sh: NAT mode must be cone or symmetric" >&2; exit 2 ;;
  esac
  in_ns "$router" iptables -w -t nat -F POSTROUTING
  in_ns "$router" iptables -w -t nat -A POSTROUTING -o wan -j MASQUERADE "${random[@]}"
}

sysctls() { # namespace forward(0|1)
  in_ns "$1" sysctl -qw net.ipv4.ip_forward="$2" net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 \
    net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
}

up() {
  down
  trap 'echo "lab.sh: setup failed, tearing down" >&2; down' ERR
  local n
  for n in "${NAMESPACES[@]}"; do
    ip netns add "$(ns "$n")"
    in_ns "$n" ip link set lo up
  done
  sysctls pub 1; sysctls nata 1; sysctls natb 1; sysctls lana 0; sysctls lanb 0

  # veth pairs created directly inside the namespaces: no interface ever exists on the host.
  ip link add wa netns "$(ns pub)" type veth peer name wan netns "$(ns nata)"
  ip link add wb netns "$(ns pub)" type veth peer name wan netns "$(ns natb)"
  ip link add lan netns "$(ns nata)" type veth peer name eth0 netns "$(ns lana)"
  ip link add lan netns "$(ns natb)" type veth peer name eth0 netns "$(ns lanb)"
  # sysctls again: interfaces created after `default` was set took it, but be explicit per link.
  for pair in pub:wa pub:wb nata:wan nata:lan natb:wan natb:lan lana:eth0 lanb:eth0; do
    in_ns "${pair%%:*}" sysctl -qw "net.ipv4.conf.${pair#*:}.rp_filter=0"
  done

  in_ns pub ip addr add 198.51.100.1/24 dev wa
  in_ns pub ip addr add 203.0.113.1/24 dev wb
  in_ns nata ip addr add 198.51.100.2/24 dev wan
  in_ns nata ip addr add 10.1.0.1/24 dev lan
  in_ns natb ip addr add 203.0.113.2/24 dev wan
  in_ns natb ip addr add 10.2.0.1/24 dev lan
  in_ns lana ip addr add 10.1.0.2/24 dev eth0
  in_ns lanb ip addr add 10.2.0.2/24 dev eth0
  for pair in pub:wa pub:wb nata:wan nata:lan natb:wan natb:lan lana:eth0 lanb:eth0; do
    in_ns "${pair%%:*}" ip link set "${pair#*:}" up
  done
  in_ns nata ip route add default via 198.51.100.1
  in_ns natb ip route add default via 203.0.113.1
  in_ns lana ip route add default via 10.1.0.1
  in_ns lanb ip route add default via 10.2.0.1

  for router in a b; do
    local r="nat$router"
    # The router itself accepts nothing from anyone (else a mapped port could reach it);
    # it forwards LAN → WAN, and WAN → LAN only for flows the LAN started.
    in_ns "$r" iptables -w -P INPUT DROP
    in_ns "$r" iptables -w -A INPUT -i lo -j ACCEPT
    in_ns "$r" iptables -w -P FORWARD DROP
    in_ns "$r" iptables -w -A FORWARD -i lan -o wan -j ACCEPT
    in_ns "$r" iptables -w -A FORWARD -i wan -o lan -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
    set_nat "$router" cone
  done

  # No route leads from one LAN to the other: only through the NATs' public addresses.
  if in_ns lanb ip route get 10.1.0.2 >/dev/null 2>&1 && in_ns pub ip route get 10.1.0.2 2>/dev/null | grep -q 'via'; then
    echo "lab.sh: the public segment routes into LAN a" >&2
    exit 1
  fi
  trap - ERR
  echo "lab.sh: up ($(printf '%s ' "${NAMESPACES[@]/#/$prefix-}"))"
}

case "$cmd" in
  up) up ;;
  down) down ;;
  nat) set_nat "${3:?a or b}" "${4:?cone or symmetric}" ;;
  exec) n="${3:?namespace}"; shift 3; exec ip netns exec "$(ns "$n")" "$@" ;;
  *) sed -n '2,12p' "$0" >&2; exit 2 ;;
esac
