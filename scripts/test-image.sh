#!/usr/bin/env bash
# Build the offline test image peerdock-test/busybox:latest from Debian's
# statically linked busybox (package busybox-static), with `docker import`.
# No image registry is needed. Idempotent: skips the build when the image
# exists, unless --force is given. Always runs a quick check of the image.
#
#   bash scripts/test-image.sh [--force]
set -euo pipefail

IMAGE=peerdock-test/busybox:latest
BUSYBOX=/bin/busybox
FORCE=0
for arg in "$@"; do
  case "$arg" in
    --force) FORCE=1 ;;
    *) echo "usage: $0 [--force]" >&2; exit 2 ;;
  esac
done

if [ "$FORCE" = 0 ] && docker image inspect "$IMAGE" >/dev/null 2>&1; then
  echo "test-image: $IMAGE already exists (use --force to rebuild)"
else
  if [ ! -x "$BUSYBOX" ]; then
    echo "test-image: $BUSYBOX missing (apt-get install busybox-static)" >&2
    exit 1
  fi
  # Must be the static build: the image has no libc.
  if ! file_out="$(LC_ALL=C ldd "$BUSYBOX" 2>&1)"; then :; fi
  case "$file_out" in
    *"not a dynamic executable"*|*"statically linked"*) ;;
    *) echo "test-image: $BUSYBOX is not statically linked (install busybox-static):" >&2
       echo "$file_out" >&2; exit 1 ;;
  esac

  work="$(mktemp -d "${TMPDIR:-/tmp}/peerdock-rootfs.XXXXXX")"
  trap 'rm -rf "$work"' EXIT
  root="$work/rootfs"
  mkdir -p "$root"/{bin,etc,tmp,root,proc,sys,dev,home}
  chmod 1777 "$root/tmp"
  chmod 700 "$root/root"
  cp "$BUSYBOX" "$root/bin/busybox"
  chmod 755 "$root/bin/busybox"

  n=0
  # `busybox --list` prints bare applet names (sh, echo, wc, ...).
  while IFS= read -r applet; do
    case "$applet" in ''|busybox|*/*) continue ;; esac
    ln -sf busybox "$root/bin/$applet"
    n=$((n + 1))
  done < <("$BUSYBOX" --list)
  for must in sh echo wc cat sleep ls mkdir sha256sum dd head yes; do
    [ -L "$root/bin/$must" ] || { echo "test-image: applet $must missing" >&2; exit 1; }
  done

  cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
  cat >"$root/etc/group" <<'EOF'
root:x:0:
nogroup:x:65534:
nobody:x:65534:
EOF
  chmod 644 "$root/etc/passwd" "$root/etc/group"

  old_id="$(docker image inspect -f '{{.Id}}' "$IMAGE" 2>/dev/null || true)"
  echo "test-image: importing $IMAGE ($n applets)"
  tar --numeric-owner --owner=0 --group=0 -C "$root" -c . |
    docker import \
      --change 'ENV PATH=/bin' \
      --change 'CMD ["sh"]' \
      - "$IMAGE" >/dev/null
  # --force: drop the image that lost its tag (ignored if a container uses it)
  if [ -n "$old_id" ] && [ "$old_id" != "$(docker image inspect -f '{{.Id}}' "$IMAGE")" ]; then
    docker image rm "$old_id" >/dev/null 2>&1 || true
  fi
fi

out="$(docker run --rm "$IMAGE" sh -c 'echo hi; wc -l /etc/passwd')"
expected=$'hi\n2 /etc/passwd'
if [ "$out" != "$expected" ]; then
  echo "test-image: check of $IMAGE failed; got:" >&2
  echo "$out" >&2
  exit 1
fi
echo "test-image: $IMAGE OK"
