#!/usr/bin/env bash
# pi-cluster podman lab: seven systemd containers that stand in for the Raspberry Pis.
#
#   lab/lab.sh deps          apt-get install what the lab needs (podman runc debootstrap [+ qemu for arm64])
#   lab/lab.sh image [SUITE...]  build (once) and import the lab images (bookworm, trixie); cached by a
#                            hash of their inputs
#   lab/lab.sh up            images + network + inventory/lab/hosts.yml + each new host's boot partition
#                            written by the rpi_image role + containers booted from it (first boot:
#                            cloud-init on trixie, firstrun.sh + reboot on bookworm) (idempotent)
#   lab/lab.sh reboot        restart every lab container (the lab's reboot) and wait for SSH
#   lab/lab.sh converge [ansible-playbook args...]
#                            ansible-playbook -i inventory/lab/hosts.yml site.yml --vault-password-file
#                            lab/vault-password.txt --skip-tags molecule-notest [args...]
#   lab/lab.sh status        the lab's containers
#   lab/lab.sh ssh HOST [cmd...]  SSH to a lab host as the admin user with the lab key
#   lab/lab.sh down          remove containers, network and the generated inventory (= make lab-destroy)
#   lab/lab.sh destroy-all   down + the cached image, rootfs tarball and SSH key
#
# Environment:
#   LAB_ARCH=arm64    emulated arm64 lab (qemu-user-static + binfmt; ~10x slower, use with LAB_HOSTS)
#   LAB_HOSTS="a b"   only these inventory hosts (default: every host of inventory/hosts.yml)
#   LAB_TRIXIE_HOSTS="a b"  hosts booted from the trixie image, the others from the bookworm one
#                     (default: pi-master pi-worker-02 pi-worker-03 pi-worker-04)
#   LAB_APT_CACHE=0   no apt-cacher-ng on the host (default: started on port 3142 and used by the
#                     image build and by the containers' apt)
#   LAB_BOOT_TIMEOUT  seconds to wait for the first boot + sshd in all containers (default 300, arm64 600)
#   XDG_CACHE_HOME    cache root (image tarball + key under ${XDG_CACHE_HOME:-$HOME/.cache}/pi-cluster/lab)
#
# Never edits system files: podman reads lab/containers.conf through CONTAINERS_CONF.
set -euo pipefail

LAB_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "${LAB_DIR}/.." && pwd)"
export CONTAINERS_CONF="${LAB_DIR}/containers.conf"

NATIVE_ARCH="$(dpkg --print-architecture 2>/dev/null || echo amd64)"
LAB_ARCH="${LAB_ARCH:-${NATIVE_ARCH}}"
LAB_TRIXIE_HOSTS="${LAB_TRIXIE_HOSTS-pi-master pi-worker-02 pi-worker-03 pi-worker-04}"
LAB_APT_CACHE="${LAB_APT_CACHE:-1}"
APT_CACHE_PORT=3142
LAB_NETWORK=pi-cluster-lab
LAB_LABEL=pi-cluster-lab
CACHE_DIR="${XDG_CACHE_HOME:-${HOME}/.cache}/pi-cluster/lab"
KEY="${CACHE_DIR}/id_ed25519"
BUILD_LOG="${CACHE_DIR}/build-${LAB_ARCH}.log"
IMAGE_REPO=localhost/pi-cluster-lab
SRC_INVENTORY="${REPO_ROOT}/inventory/hosts.yml"
LAB_INVENTORY="${REPO_ROOT}/inventory/lab/hosts.yml"
VAULT_PASSWORD_FILE="${REPO_ROOT}/lab/vault-password.txt"
# Each host's boot partition (/boot/firmware in its container), written by the rpi_image role.
BOOT_ROOT="${REPO_ROOT}/.cache/lab-boot"
# Facts of the lab hosts are cached apart from the real Pis' (same host names, ansible.cfg caches
# facts for 24 h with gathering=smart): `lab/lab.sh converge` and molecule point ANSIBLE_CACHE_PLUGIN_CONNECTION here.
FACT_CACHE="${REPO_ROOT}/.cache/lab-facts"
VENV="${PI_CLUSTER_VENV:-${XDG_CACHE_HOME:-${HOME}/.cache}/pi-cluster/venv}"
if [[ "${LAB_ARCH}" == "${NATIVE_ARCH}" ]]; then
    BOOT_TIMEOUT="${LAB_BOOT_TIMEOUT:-300}"
else
    BOOT_TIMEOUT="${LAB_BOOT_TIMEOUT:-600}"
fi

log() { printf '[lab %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

python_bin() {
    # PyYAML is needed for the inventory: the control venv has it (ansible depends on it).
    if [[ -x "${VENV}/bin/python" ]]; then echo "${VENV}/bin/python"; else command -v python3; fi
}
labinv() { "$(python_bin)" "${LAB_DIR}/labinv.py" "$@"; }
tool() {
    # ansible tools: the project venv first, then PATH
    if [[ -x "${VENV}/bin/$1" ]]; then echo "${VENV}/bin/$1"; else command -v "$1" || die "$1 not found"; fi
}

lab_hosts() {
    if [[ -n "${LAB_HOSTS:-}" ]]; then tr ' ' '\n' <<<"${LAB_HOSTS}" | sed '/^$/d'; else labinv hosts "${SRC_INVENTORY}"; fi
}

need() {
    local missing=()
    for cmd in "$@"; do command -v "${cmd}" >/dev/null 2>&1 || missing+=("${cmd}"); done
    ((${#missing[@]} == 0)) || die "missing: ${missing[*]} (run: lab/lab.sh deps, or apt-get install podman runc debootstrap)"
}

# ---------------------------------------------------------------------------------------------- deps
cmd_deps() {
    local pkgs=(podman runc debootstrap)
    [[ "${LAB_ARCH}" == "${NATIVE_ARCH}" ]] || pkgs+=(qemu-user-static binfmt-support)
    local absent=()
    for p in "${pkgs[@]}"; do dpkg-query -W -f='${Status}' "${p}" 2>/dev/null | grep -q 'install ok installed' || absent+=("${p}"); done
    if ((${#absent[@]})); then
        log "apt-get install ${absent[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq "${absent[@]}"
    else
        log "deps present: ${pkgs[*]}"
    fi
}

# ---------------------------------------------------------------------------------------------- arm64
binfmt_arm64() {
    # qemu-aarch64 must be registered with flags POCF: Debian's "PF" breaks setuid binaries inside the
    # container (sudo: "effective uid is not 0"). Only kernel state is changed, no file.
    [[ -e /proc/sys/fs/binfmt_misc/status ]] || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
    local entry=/proc/sys/fs/binfmt_misc/qemu-aarch64 qemu=/usr/bin/qemu-aarch64-static
    [[ -x "${qemu}" ]] || die "${qemu} missing: LAB_ARCH=${LAB_ARCH} lab/lab.sh deps"
    if [[ -e "${entry}" ]] && grep -qx 'flags: POCF' "${entry}"; then return 0; fi
    local magic mask
    magic="$(sed -n 's/^magic //p' /usr/share/binfmts/qemu-aarch64)"
    mask="$(sed -n 's/^mask //p' /usr/share/binfmts/qemu-aarch64)"
    [[ -n "${magic}" && -n "${mask}" ]] || die "cannot read magic/mask from /usr/share/binfmts/qemu-aarch64"
    [[ -e "${entry}" ]] && echo -1 >"${entry}"
    printf ':qemu-aarch64:M::%s:%s:%s:POCF\n' "${magic}" "${mask}" "${qemu}" >/proc/sys/fs/binfmt_misc/register
    log "binfmt: qemu-aarch64 registered with flags POCF"
}

# ---------------------------------------------------------------------------------------------- image
# lab/packages.txt: "<package> [suite]" per line; the packages of SUITE, comma-separated
package_list() {
    sed -e 's/#.*//' "${LAB_DIR}/packages.txt" | awk -v suite="$1" 'NF && (NF == 1 || $2 == suite) {print $1}' | paste -sd, -
}

host_suite() {
    if [[ " ${LAB_TRIXIE_HOSTS} " == *" $1 "* ]]; then echo trixie; else echo bookworm; fi
}

# ---------------------------------------------------------------------------------------------- apt cache
# apt-cacher-ng on the host (Debian package, scripts/system-packages.txt) keeps converge fast
# without baking the roles' packages into the image: the image build and the containers' apt go
# through it, so each .deb crosses the network once per machine, not once per host and run.
apt_cache_url() { echo "http://$1:${APT_CACHE_PORT}"; }

apt_cache_up() {
    [[ "${LAB_APT_CACHE}" == 1 ]] || return 1
    if (exec 3<>"/dev/tcp/127.0.0.1/${APT_CACHE_PORT}") 2>/dev/null; then return 0; fi
    command -v apt-cacher-ng >/dev/null 2>&1 && [[ -x /usr/sbin/apt-cacher-ng ]] \
        || { log "apt-cacher-ng not installed (make lab installs it): apt goes to the mirror directly"; return 1; }
    # The daemon as its own user with Debian's config, except the Debian backend: the mirror of this
    # machine's apt sources (the package's default, ftp.debian.org, may be unreachable here). No
    # system file changes; `lab/lab.sh destroy-all` stops it.
    local mirror
    mirror="$(labinv mirror bookworm)"
    install -d -o apt-cacher-ng -g apt-cacher-ng /run/apt-cacher-ng /var/cache/apt-cacher-ng /var/log/apt-cacher-ng
    runuser -u apt-cacher-ng -- /usr/sbin/apt-cacher-ng -c /etc/apt-cacher-ng ForeGround=0 \
        pidfile=/run/apt-cacher-ng/pid SocketPath=/run/apt-cacher-ng/socket \
        "Remap-debrep=file:deb_mirror*.gz /debian ; ${mirror}/"
    local i
    for i in $(seq 1 50); do
        if (exec 3<>"/dev/tcp/127.0.0.1/${APT_CACHE_PORT}") 2>/dev/null; then
            log "apt-cacher-ng listening on port ${APT_CACHE_PORT}"
            return 0
        fi
        sleep 0.2
    done
    log "apt-cacher-ng did not start: apt goes to the mirror directly"
    return 1
}

image_hash() {
    # Inputs of the image of suite $1: suite, arch, package list, and the files under lab/image/
    # (path + content) that go into it (image/arm64/ only into the emulated arm64 one, image/<suite>/
    # only into that suite's, image/bootfs/ into none: it is each host's boot partition).
    local suite="$1" skip='^\./(bootfs|bookworm|trixie|arm64)/'
    skip="${skip/${suite}|/}"
    [[ "${LAB_ARCH}" == "${NATIVE_ARCH}" ]] || skip="${skip/|arm64/}"
    {
        echo "suite=${suite} arch=${LAB_ARCH}"
        package_list "${suite}"
        (cd "${LAB_DIR}/image" && find . -type f | grep -Ev "${skip}" | LC_ALL=C sort | while read -r f; do
            echo "${f}"
            sha256sum <"${f}"
        done)
    } | sha256sum | cut -c1-16
}

chroot_install() {
    local root="$1" suite="$2" rc=0 proxy=()
    [[ -z "${IMAGE_PROXY:-}" ]] || proxy=(-o "Acquire::http::Proxy=${IMAGE_PROXY}")
    mount -t proc proc "${root}/proc"
    printf '#!/bin/sh\nexit 101\n' >"${root}/usr/sbin/policy-rc.d"
    chmod 0755 "${root}/usr/sbin/policy-rc.d"
    # shellcheck disable=SC2046
    chroot "${root}" /usr/bin/env DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 PKGS="$(package_list "${suite}" | tr ',' ' ')" sh -c \
        'apt-get "$@" update -qq && apt-get "$@" install -y -qq --no-install-recommends -o Dpkg::Options::=--force-unsafe-io $PKGS' sh \
        "${proxy[@]}" >>"${BUILD_LOG}" 2>&1 || rc=$?
    rm -f "${root}/usr/sbin/policy-rc.d"
    umount "${root}/proc"
    ((rc == 0)) || tail -20 "${BUILD_LOG}" >&2
    return "${rc}"
}

image_ref() { echo "${IMAGE_REPO}:$1-${LAB_ARCH}-$(image_hash "$1")"; }

cmd_image() {
    local suite
    (($#)) || set -- bookworm trixie
    for suite in "$@"; do build_image "${suite}"; done
}

build_image() {
    need podman debootstrap
    local suite="$1" ref hash tarball
    [[ "${suite}" == bookworm || "${suite}" == trixie ]] || die "unknown suite ${suite} (bookworm or trixie)"
    hash="$(image_hash "${suite}")"
    ref="${IMAGE_REPO}:${suite}-${LAB_ARCH}-${hash}"
    tarball="${CACHE_DIR}/rootfs-${suite}-${LAB_ARCH}-${hash}.tar"
    if podman image exists "${ref}"; then
        log "image ${ref} present"
        return 0
    fi
    mkdir -p "${CACHE_DIR}"
    local IMAGE_PROXY=""
    if apt_cache_up; then IMAGE_PROXY="$(apt_cache_url 127.0.0.1)"; fi
    [[ "${LAB_ARCH}" == "${NATIVE_ARCH}" ]] || binfmt_arm64
    if [[ ! -s "${tarball}" ]]; then
        local root="${CACHE_DIR}/build-${suite}-${LAB_ARCH}-${hash}" mirror t0=${SECONDS}
        mirror="$(labinv mirror "${suite}")"
        rm -rf --one-file-system "${root}"
        # Two steps: debootstrap's own resolver cannot pick providers of virtual packages
        # (python3-cryptography needs python3-cffi-backend-api-*), apt in the chroot can.
        log "debootstrap ${suite}/${LAB_ARCH} minbase from ${mirror}${IMAGE_PROXY:+ through ${IMAGE_PROXY}}"
        http_proxy="${IMAGE_PROXY}" debootstrap --variant=minbase --arch="${LAB_ARCH}" "${suite}" "${root}" "${mirror}" \
            >"${BUILD_LOG}" 2>&1 \
            || { tail -20 "${BUILD_LOG}" >&2; die "debootstrap failed (log: ${BUILD_LOG})"; }
        log "debootstrap done in $((SECONDS - t0)) s; apt-get install $(package_list "${suite}" | tr ',' '\n' | wc -l) packages"
        labinv sources "${suite}" >"${root}/etc/apt/sources.list.d/debian.sources"
        rm -f "${root}/etc/apt/sources.list"
        # the suite's own files first: cloud.cfg.d must be in place when cloud-init's package is configured
        [[ ! -d "${LAB_DIR}/image/${suite}" ]] || cp -a "${LAB_DIR}/image/${suite}/." "${root}/"
        chroot_install "${root}" "${suite}" || die "apt-get install in the image failed (log: ${BUILD_LOG})"
        log "packages installed, $((SECONDS - t0)) s so far"
        cp -a "${LAB_DIR}/image/rootfs/." "${root}/"
        [[ "${LAB_ARCH}" == "${NATIVE_ARCH}" ]] || cp -a "${LAB_DIR}/image/arm64/." "${root}/"
        install -m 0755 "${LAB_DIR}/image/customize.sh" "${root}/tmp/customize.sh"
        chroot "${root}" /bin/sh /tmp/customize.sh "${suite}"
        t0=${SECONDS}
        tar --numeric-owner --xattrs -C "${root}" -cf "${tarball}.part" .
        mv "${tarball}.part" "${tarball}"
        rm -rf --one-file-system "${root}"
        log "rootfs tarball $(du -h "${tarball}" | cut -f1) in $((SECONDS - t0)) s"
        # one image per arch in the cache: older tarballs go
        find "${CACHE_DIR}" -maxdepth 1 -name "rootfs-${suite}-${LAB_ARCH}-*.tar" ! -name "$(basename "${tarball}")" -delete
    fi
    local t0=${SECONDS}
    podman import --quiet --arch "${LAB_ARCH}" \
        --change 'CMD ["/lib/systemd/systemd"]' \
        --change 'ENV container=podman' \
        --change 'STOPSIGNAL SIGRTMIN+3' \
        --message "pi-cluster lab ${suite} ${LAB_ARCH}" \
        "${tarball}" "${ref}" >/dev/null
    log "imported ${ref} in $((SECONDS - t0)) s"
    # older lab images of this arch go too (an image still used by a container stays)
    local old
    for old in $(podman images --format '{{.Repository}}:{{.Tag}}' | grep -E "^${IMAGE_REPO}:(${suite}-)?${LAB_ARCH}-" | grep -vx "${ref}"); do
        if podman rmi "${old}" >/dev/null 2>&1; then log "removed old image ${old}"; fi
    done
}

# ---------------------------------------------------------------------------------------------- up
container_ip() {
    podman inspect -f "{{(index .NetworkSettings.Networks \"${LAB_NETWORK}\").IPAddress}}" "$1"
}

ssh_opts=(-o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o ConnectTimeout=5)

cmd_up() {
    need podman ssh ssh-keygen
    local t_start=${SECONDS} hosts suites=() h
    mapfile -t hosts < <(lab_hosts)
    ((${#hosts[@]})) || die "no hosts"
    for h in "${hosts[@]}"; do
        [[ " ${suites[*]} " == *" $(host_suite "${h}") "* ]] || suites+=("$(host_suite "${h}")")
    done
    cmd_image "${suites[@]}"

    mkdir -p "${CACHE_DIR}/cp"
    if [[ ! -s "${KEY}" ]]; then
        ssh-keygen -q -t ed25519 -N '' -C "pi-cluster-lab" -f "${KEY}"
        log "lab SSH key ${KEY}"
    fi
    # the subnet is pi_cluster_subnet of the lab overrides: inventory and network agree
    local want_subnet net_subnet gateway
    want_subnet="$(labinv lab-var pi_cluster_subnet)"
    if ! podman network exists "${LAB_NETWORK}"; then
        podman network create --subnet "${want_subnet}" --label "${LAB_LABEL}=1" "${LAB_NETWORK}" >/dev/null 2>&1
        log "network ${LAB_NETWORK} ${want_subnet}"
    fi
    net_subnet="$(podman network inspect -f '{{range .Subnets}}{{.Subnet}} {{end}}' "${LAB_NETWORK}" | awk '{print $1}')"
    gateway="$(podman network inspect -f '{{range .Subnets}}{{.Gateway}} {{end}}' "${LAB_NETWORK}" | awk '{print $1}')"
    [[ "${net_subnet}" == "${want_subnet}" ]] \
        || die "network ${LAB_NETWORK} has subnet ${net_subnet}, zz_lab.yml says ${want_subnet}: lab/lab.sh down first"

    # fixed address per host: a restarted container keeps it, as a Pi keeps its DHCP reservation.
    # The inventory is written first: the rpi_image role reads each host's address from it.
    local -A lab_ip=()
    local name addr
    while read -r name addr; do lab_ip["${name}"]="${addr}"; done < <(labinv addresses "${SRC_INVENTORY}" "${net_subnet}")
    write_inventory "${net_subnet}" "${gateway}" lab_ip "${hosts[@]}"

    # apt of the containers goes through the host's apt-cacher-ng (the network's gateway)
    local apt_conf="${CACHE_DIR}/apt-proxy.conf" apt_args=()
    if apt_cache_up; then
        printf 'Acquire::http::Proxy "%s";\n' "$(apt_cache_url "${gateway}")" >"${apt_conf}"
        apt_args=(-v "${apt_conf}:/etc/apt/apt.conf.d/00-pi-cluster-lab-apt-cacher-ng:ro")
    fi

    local new=() arch_args=() created=0 started=0
    for h in "${hosts[@]}"; do podman container exists "${h}" || new+=("${h}"); done
    ((${#new[@]} == 0)) || boot_files "${new[@]}"

    [[ "${LAB_ARCH}" == "${NATIVE_ARCH}" ]] || arch_args=(--arch "${LAB_ARCH}" --stop-timeout 2)
    [[ "${LAB_ARCH}" == "${NATIVE_ARCH}" ]] || binfmt_arm64
    for h in "${hosts[@]}"; do
        if podman container exists "${h}"; then
            [[ "$(podman inspect -f '{{.ImageName}}' "${h}")" == "$(image_ref "$(host_suite "${h}")")" ]] \
                || log "${h} runs an older lab image; lab/lab.sh down && lab/lab.sh up renews it"
            if [[ "$(podman inspect -f '{{.State.Running}}' "${h}")" != true ]]; then
                log "start ${h}"
                podman start "${h}" >/dev/null
                started=$((started + 1))
            fi
            continue
        fi
        # --no-hosts: /etc/hosts is the image's own file, as on a Pi (base_os writes it); the hosts
        # still find each other through the network's DNS. /boot/firmware is the host's boot
        # partition as the rpi_image role left it.
        podman run -d --systemd=always --network "${LAB_NETWORK}" --hostname "${h}" --name "${h}" --no-hosts \
            --ip "${lab_ip[${h}]:?no lab address for ${h}}" --label "${LAB_LABEL}=1" \
            -v "${BOOT_ROOT}/${h}:/boot/firmware" "${apt_args[@]}" "${arch_args[@]}" \
            "$(image_ref "$(host_suite "${h}")")" >/dev/null
        # The image was built minutes ago; a Lite image someone flashes is weeks old. Its (empty) apt
        # lists must not look fresh, or apt's cache_valid_time skips the update the roles rely on.
        podman exec "${h}" touch -d 2000-01-01 /var/lib/apt/lists
        # a new container: facts cached for an older one of the same name are stale
        rm -f "${FACT_CACHE}/${h}"
        created=$((created + 1))
        log "run ${h} ($(host_suite "${h}"), first boot)"
    done
    wait_hosts "${hosts[@]}"
    log "lab up: ${#hosts[@]} hosts (created ${created}, started ${started}) in $((SECONDS - t_start)) s; inventory ${LAB_INVENTORY#"${REPO_ROOT}/"}"
}

# The boot partition of each new host, as Imager + the rpi_image role leave it on the SD card: the
# Lite image's cmdline.txt/config.txt, then the role (boot-dir mode) writes the first-boot files
# (trixie: user-data, meta-data, network-config; bookworm: firstrun.sh, userconf.txt, cmdline.txt).
boot_files() {
    local h t0=${SECONDS} trixie=()
    for h in "$@"; do
        rm -rf "${BOOT_ROOT:?}/${h}"
        install -d -m 0755 "${BOOT_ROOT}/${h}"
        install -m 0644 "${LAB_DIR}/image/bootfs/"* "${BOOT_ROOT}/${h}/"
        [[ "$(host_suite "${h}")" != trixie ]] || trixie+=("${h}")
    done
    (
        cd "${REPO_ROOT}"
        "$(tool ansible-playbook)" -i "${LAB_INVENTORY}" "${LAB_DIR}/boot-files.yml" \
            --vault-password-file "${VAULT_PASSWORD_FILE}" \
            -e "{\"lab_boot_root\": \"${BOOT_ROOT}\", \"lab_new_hosts\": $(json_list "$@"), \"lab_trixie_hosts\": $(json_list "${trixie[@]}")}" \
            >"${CACHE_DIR}/boot-files.log" 2>&1
    ) || { tail -30 "${CACHE_DIR}/boot-files.log" >&2; die "rpi_image did not write the boot files (log: ${CACHE_DIR}/boot-files.log)"; }
    # as on the FAT boot partition (mounted with fmask=0022): every file 0755
    for h in "$@"; do find "${BOOT_ROOT}/${h}" -type f -exec chmod 0755 {} +; done
    log "boot files of $# host(s) written by the rpi_image role in $((SECONDS - t0)) s"
}

# ["a", "b"] of inventory host names (letters, digits, - _ .)
json_list() {
    local out="" x
    for x in "$@"; do out+="${out:+, }\"${x}\""; done
    echo "[${out}]"
}

wait_hosts() {
    local pids=() failed=0 pid h
    for h in "$@"; do
        wait_host "${h}" "$((SECONDS + BOOT_TIMEOUT))" &
        pids+=("$!")
    done
    for pid in "${pids[@]}"; do wait "${pid}" || failed=$((failed + 1)); done
    ((failed == 0)) || die "${failed} host(s) did not come up (see above)"
}

# Boot finished and SSH answers as the admin user with the lab key: both only because the first
# boot made them (nothing is copied into the container). A container that exits during its first
# boot has rebooted (firstrun.sh's systemd.run_success_action=reboot): it is started again.
wait_host() {
    local h="$1" deadline="$2" state ip user
    user="$(labinv var pi_cluster_admin_user)"
    while :; do
        if [[ "$(podman inspect -f '{{.State.Running}}' "${h}")" != true ]]; then
            log "${h}: rebooted by its first boot; starting it again"
            podman start "${h}" >/dev/null
        fi
        ip="$(container_ip "${h}" 2>/dev/null || true)"
        state="$(podman exec "${h}" systemctl is-system-running 2>/dev/null || true)"
        if [[ "${state}" == running || "${state}" == degraded ]] \
            && ssh "${ssh_opts[@]}" -i "${KEY}" "${user}@${ip}" true 2>/dev/null; then
            break
        fi
        ((SECONDS < deadline)) || {
            log "${h}: systemd '${state}', no SSH as ${user}@${ip} after ${BOOT_TIMEOUT} s"
            podman exec "${h}" sh -c 'journalctl -b --no-pager | tail -25; cloud-init status --long 2>/dev/null' 2>&1 | sed "s/^/[${h}] /" >&2 || true
            return 1
        }
        sleep 1
    done
    if [[ "${state}" == degraded ]]; then
        log "${h}: systemd degraded, failed units: $(podman exec "${h}" systemctl --failed --plain --no-legend | cut -d' ' -f1 | paste -sd' ')"
    fi
}

write_inventory() {
    local subnet="$1" gateway="$2" h pairs=() partial=()
    local -n addresses="$3"
    shift 3
    for h in "$@"; do pairs+=(--address "${h}=${addresses[${h}]}"); done
    # a partial lab (LAB_HOSTS): the inventory holds only the hosts that run
    [[ -z "${LAB_HOSTS:-}" ]] || partial=(--partial)
    labinv write "${SRC_INVENTORY}" "${LAB_INVENTORY}" --key "${KEY}" --network "${LAB_NETWORK}" \
        --subnet "${subnet}" --gateway "${gateway}" "${partial[@]}" "${pairs[@]}"
}

# The lab's reboot: every container restarted (systemd stops and boots again, cloud-init runs its
# per-boot modules), then the same wait as `up`.
cmd_reboot() {
    need podman
    local hosts t0=${SECONDS}
    mapfile -t hosts < <(podman ps -a --filter "label=${LAB_LABEL}" --format '{{.Names}}' | sort)
    ((${#hosts[@]})) || die "no lab containers: lab/lab.sh up first"
    podman restart -t 10 "${hosts[@]}" >/dev/null
    wait_hosts "${hosts[@]}"
    log "lab reboot: ${#hosts[@]} hosts back in $((SECONDS - t0)) s"
}

# ---------------------------------------------------------------------------------------------- others
cmd_converge() {
    [[ -s "${LAB_INVENTORY}" ]] || die "${LAB_INVENTORY} missing: run lab/lab.sh up first"
    cd "${REPO_ROOT}"
    export ANSIBLE_CACHE_PLUGIN_CONNECTION="${FACT_CACHE}"
    # tasks that cannot run in containers are tagged molecule-notest: skipped here as molecule does
    exec "$(tool ansible-playbook)" -i inventory/lab/hosts.yml site.yml --vault-password-file "${VAULT_PASSWORD_FILE}" \
        --skip-tags molecule-notest "$@"
}

cmd_status() {
    podman ps -a --filter "label=${LAB_LABEL}" --format '{{.Names}}\t{{.Status}}\t{{.Image}}'
}

cmd_ssh() {
    local h="${1:?usage: lab/lab.sh ssh HOST [command...]}"
    shift
    exec ssh "${ssh_opts[@]}" -i "${KEY}" "$(labinv var pi_cluster_admin_user)@$(container_ip "${h}")" "$@"
}

cmd_down() {
    need podman
    local ids sock
    # multiplexed SSH masters of the lab (ControlPath in the generated inventory)
    for sock in "${CACHE_DIR}"/cp/*; do
        [[ -S "${sock}" ]] && ssh -o ControlPath="${sock}" -O exit lab >/dev/null 2>&1 || true
    done
    ids="$(podman ps -aq --filter "label=${LAB_LABEL}")"
    if [[ -n "${ids}" ]]; then
        # stop first, then remove: `podman rm -f -t N` of podman 4.3 fails with "container state
        # improper: stopped" when a container stops by itself right at the timeout
        # shellcheck disable=SC2086
        podman stop -t 10 ${ids} >/dev/null 2>&1 || true
        # shellcheck disable=SC2086
        podman rm -f ${ids} >/dev/null 2>&1 || { sleep 1; podman rm -f ${ids} >/dev/null; }
        log "removed $(wc -w <<<"${ids}") containers"
    fi
    if podman network exists "${LAB_NETWORK}"; then
        podman network rm -f "${LAB_NETWORK}" >/dev/null
        log "removed network ${LAB_NETWORK}"
    fi
    # CNI address leases of containers whose teardown failed (seen after a "Joining network namespace"
    # error) would block the fixed addresses of the next `up`: the network is gone, so are they
    if [[ -d "/var/lib/cni/networks/${LAB_NETWORK}" ]]; then
        rm -rf "/var/lib/cni/networks/${LAB_NETWORK:?}"
        log "removed stale address leases of ${LAB_NETWORK}"
    fi
    rm -f "${LAB_INVENTORY}"
    rm -rf "${FACT_CACHE}" "${BOOT_ROOT}"
}

cmd_destroy_all() {
    cmd_down
    local imgs
    imgs="$(podman images --format '{{.Repository}}:{{.Tag}}' | grep "^${IMAGE_REPO}:" || true)"
    if [[ -n "${imgs}" ]]; then
        # no -f: an image another container still uses stays (and is reported)
        local img
        for img in ${imgs}; do
            if podman rmi "${img}" >/dev/null 2>&1; then log "removed image ${img}"; else log "kept image ${img}: still in use"; fi
        done
    fi
    rm -rf "${CACHE_DIR}"
    log "removed ${CACHE_DIR}"
    if [[ -s /run/apt-cacher-ng/pid ]] && kill "$(cat /run/apt-cacher-ng/pid)" 2>/dev/null; then
        log "stopped apt-cacher-ng (its cache /var/cache/apt-cacher-ng stays)"
    fi
}

case "${1:-}" in
    deps) cmd_deps ;;
    image) shift; cmd_image "$@" ;;
    up) cmd_up ;;
    reboot) cmd_reboot ;;
    converge) shift; cmd_converge "$@" ;;
    status) cmd_status ;;
    ssh) shift; cmd_ssh "$@" ;;
    down | destroy) cmd_down ;;
    destroy-all) cmd_destroy_all ;;
    *) sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
