#!/usr/bin/env bash
# The README's commands on a fresh Debian 12 machine, on this one: a debootstrap minbase root filesystem
# with nothing but make, git, python3 (+ ca-certificates), entered as a machine would be - its own mount
# namespace, pivot_root (not chroot) and its own /run - and a clone of the project run there.
#
#   scripts/fresh-machine.sh build DIR              # once (~2 min): debootstrap bookworm into DIR
#   scripts/fresh-machine.sh run DIR CHECKOUT CMD   # clone CHECKOUT into DIR/root/project, run CMD there
#   scripts/fresh-machine.sh clean DIR              # remove DIR
#
# e.g. scripts/fresh-machine.sh build /var/tmp/fresh && scripts/fresh-machine.sh run /var/tmp/fresh . 'make test'
#
# Why pivot_root: podman inside a chroot starts the lab's systemd containers, but `podman exec` (and
# nsenter) from a chrooted process lands outside the container (reads the host's /proc/1), so every
# container looks "offline" and the lab never comes up; the same run behind pivot_root works.
# Its own PID namespace too, so that daemons the run starts (apt-cacher-ng, conmon, the lab's containers)
# end with it instead of holding port 3142 on this machine. What it shares with this machine: the kernel,
# the network namespace (so the lab must not run on this machine at the same time: same network name and
# subnet) and the package-registry settings (pip config, CA files), which a new machine of this kind has
# too. Needs root and debootstrap.
set -euo pipefail

die() { echo "fresh-machine: $*" >&2; exit 1; }
[[ $(id -u) == 0 ]] || die "needs root"

mirror() {
    sed -n 's/^URIs: *//p;s/^deb \(http[^ ]*\) .*/\1/p' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null \
        | grep -m1 debian
}

# The machine's package-registry settings, copied to the same paths (a new machine of this kind has them).
registry_settings() {
    local d=$1 f
    for f in /etc/pip.conf /root/.config/pip/pip.conf /usr/local/share/ca-certificates/* \
             $(env | sed -n 's/^\(PIP_CERT\|SSL_CERT_FILE\|REQUESTS_CA_BUNDLE\|CURL_CA_BUNDLE\)=//p'); do
        [[ -f "$f" ]] && { mkdir -p "$d$(dirname "$f")"; cp "$f" "$d$f"; }
    done
    if [[ -n "${SSL_CERT_DIR:-}" && -d "${SSL_CERT_DIR}" ]]; then
        mkdir -p "$d${SSL_CERT_DIR}"
        cp -rL "${SSL_CERT_DIR}/." "$d${SSL_CERT_DIR}/" 2>/dev/null || true
    fi
    cp /etc/resolv.conf "$d/etc/resolv.conf"
}

case "${1:-}" in
    build)
        d=${2:?DIR}
        [[ -d "$d/usr" ]] && { echo "exists: $d"; exit 0; }
        command -v debootstrap >/dev/null || die "debootstrap missing (apt-get install debootstrap)"
        debootstrap --variant=minbase --include=make,git,python3,ca-certificates bookworm "$d" "$(mirror)" >/dev/null
        cp /etc/apt/sources.list.d/debian.sources "$d/etc/apt/sources.list.d/" 2>/dev/null || true
        echo "built $d"
        ;;
    run)
        d=$(realpath "${2:?DIR}"); src=${3:?CHECKOUT}; shift 3
        [[ -x "$d/usr/bin/make" ]] || die "$d is not built: scripts/fresh-machine.sh build $d"
        rm -rf "$d/root/project"
        git clone -q "$src" "$d/root/project"
        registry_settings "$d"
        mapfile -t pass < <(env | grep -E '^(PIP_[A-Z_]+|SSL_CERT_FILE|SSL_CERT_DIR|REQUESTS_CA_BUNDLE|CURL_CA_BUNDLE)=' || true)
        # shellcheck disable=SC2016  # expanded by the inner shell, inside the new mount namespace
        exec unshare --mount --uts --pid --propagation private --fork env D="$d" CMD="$*" bash -c '
            set -e
            mount --bind "$D" "$D"
            mount -t proc proc "$D/proc"
            mount --rbind /sys "$D/sys" && mount --make-rslave "$D/sys"
            mount --rbind /dev "$D/dev" && mount --make-rslave "$D/dev"
            mount -t tmpfs -o mode=755 tmpfs "$D/run"
            mkdir -p "$D/.oldroot"
            cd "$D" && pivot_root . .oldroot && cd /
            umount -l /.oldroot
            hostname fresh-debian
            exec /usr/bin/env -i HOME=/root TERM=dumb \
                PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@" \
                bash -c "cd /root/project && $CMD"' fresh "${pass[@]}"
        ;;
    clean)
        d=${2:?DIR}
        grep -q " $(realpath "$d")[/ ]" /proc/mounts && die "still mounted under $d: not removing"
        rm -rf --one-file-system "$d"
        ;;
    *)
        sed -n '2,9p' "$0"; exit 2 ;;
esac
