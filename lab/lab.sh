#!/usr/bin/env bash
# pi-cluster podman lab: seven systemd containers that stand in for the Raspberry Pis.
#
#   lab/lab.sh deps          apt-get install what the lab needs (podman runc debootstrap [+ qemu for arm64])
#   lab/lab.sh image         build (once) and import the lab image; cached by a hash of its inputs
#   lab/lab.sh up            image + network + containers + SSH key + inventory/lab/hosts.yml (idempotent)
#   lab/lab.sh converge [ansible-playbook args...]
#                            ansible-playbook -i inventory/lab/hosts.yml site.yml --vault-password-file
#                            lab/vault-password.txt --skip-tags molecule-notest [args...]
#   lab/lab.sh status        the lab's containers
#   lab/lab.sh ssh HOST [cmd...]  SSH to a lab host as pi with the lab key
#   lab/lab.sh down          remove containers, network and the generated inventory (= make lab-destroy)
#   lab/lab.sh destroy-all   down + the cached image, rootfs tarball and SSH key
#
# Environment:
#   LAB_ARCH=arm64    emulated arm64 lab (qemu-user-static + binfmt; ~10x slower, use with LAB_HOSTS)
#   LAB_HOSTS="a b"   only these inventory hosts (default: every host of inventory/hosts.yml)
#   LAB_BOOT_TIMEOUT  seconds to wait for systemd + sshd in all containers (default 120, arm64 600)
#   XDG_CACHE_HOME    cache root (image tarball + key under ${XDG_CACHE_HOME:-$HOME/.cache}/pi-cluster/lab)
#
# Never edits system files: podman reads lab/containers.conf through CONTAINERS_CONF.
set -euo pipefail

LAB_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "${LAB_DIR}/.." && pwd)"
export CONTAINERS_CONF="${LAB_DIR}/containers.conf"

NATIVE_ARCH="$(dpkg --print-architecture 2>/dev/null || echo amd64)"
LAB_ARCH="${LAB_ARCH:-${NATIVE_ARCH}}"
LAB_SUITE=bookworm
LAB_NETWORK=pi-cluster-lab
LAB_LABEL=pi-cluster-lab
CACHE_DIR="${XDG_CACHE_HOME:-${HOME}/.cache}/pi-cluster/lab"
KEY="${CACHE_DIR}/id_ed25519"
BUILD_LOG="${CACHE_DIR}/build-${LAB_ARCH}.log"
IMAGE_REPO=localhost/pi-cluster-lab
SRC_INVENTORY="${REPO_ROOT}/inventory/hosts.yml"
LAB_INVENTORY="${REPO_ROOT}/inventory/lab/hosts.yml"
VAULT_PASSWORD_FILE="${REPO_ROOT}/lab/vault-password.txt"
# Facts of the lab hosts are cached apart from the real Pis' (same host names, ansible.cfg caches
# facts for 24 h with gathering=smart): `lab/lab.sh converge` and molecule point ANSIBLE_CACHE_PLUGIN_CONNECTION here.
FACT_CACHE="${REPO_ROOT}/.cache/lab-facts"
VENV="${PI_CLUSTER_VENV:-${XDG_CACHE_HOME:-${HOME}/.cache}/pi-cluster/venv}"
if [[ "${LAB_ARCH}" == "${NATIVE_ARCH}" ]]; then
    BOOT_TIMEOUT="${LAB_BOOT_TIMEOUT:-120}"
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
package_list() { sed -e 's/#.*//' -e 's/[[:space:]]//g' -e '/^$/d' "${LAB_DIR}/packages.txt" | paste -sd, -; }

image_hash() {
    # Inputs of the image: suite, arch, package list, and the files under lab/image/ (path + content)
    # that go into this arch's image (image/arm64/ only into the emulated arm64 one).
    local skip=./arm64/
    [[ "${LAB_ARCH}" == "${NATIVE_ARCH}" ]] || skip=/nothing/
    {
        echo "suite=${LAB_SUITE} arch=${LAB_ARCH}"
        package_list
        (cd "${LAB_DIR}/image" && find . -type f | grep -v "^${skip}" | LC_ALL=C sort | while read -r f; do
            echo "${f}"
            sha256sum <"${f}"
        done)
    } | sha256sum | cut -c1-16
}

chroot_install() {
    local root="$1" rc=0
    mount -t proc proc "${root}/proc"
    printf '#!/bin/sh\nexit 101\n' >"${root}/usr/sbin/policy-rc.d"
    chmod 0755 "${root}/usr/sbin/policy-rc.d"
    # shellcheck disable=SC2046
    chroot "${root}" /usr/bin/env DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 sh -c \
        'apt-get update -qq && apt-get install -y -qq --no-install-recommends -o Dpkg::Options::=--force-unsafe-io "$@"' sh \
        $(package_list | tr ',' ' ') >>"${BUILD_LOG}" 2>&1 || rc=$?
    rm -f "${root}/usr/sbin/policy-rc.d"
    umount "${root}/proc"
    ((rc == 0)) || tail -20 "${BUILD_LOG}" >&2
    return "${rc}"
}

image_ref() { echo "${IMAGE_REPO}:${LAB_ARCH}-$(image_hash)"; }

cmd_image() {
    need podman debootstrap
    local ref hash tarball
    hash="$(image_hash)"
    ref="${IMAGE_REPO}:${LAB_ARCH}-${hash}"
    tarball="${CACHE_DIR}/rootfs-${LAB_ARCH}-${hash}.tar"
    if podman image exists "${ref}"; then
        log "image ${ref} present"
        return 0
    fi
    mkdir -p "${CACHE_DIR}"
    [[ "${LAB_ARCH}" == "${NATIVE_ARCH}" ]] || binfmt_arm64
    if [[ ! -s "${tarball}" ]]; then
        local root="${CACHE_DIR}/build-${LAB_ARCH}-${hash}" mirror t0=${SECONDS}
        mirror="$(labinv mirror "${LAB_SUITE}")"
        rm -rf --one-file-system "${root}"
        # Two steps: debootstrap's own resolver cannot pick providers of virtual packages
        # (python3-cryptography needs python3-cffi-backend-api-*), apt in the chroot can.
        log "debootstrap ${LAB_SUITE}/${LAB_ARCH} minbase from ${mirror}"
        debootstrap --variant=minbase --arch="${LAB_ARCH}" "${LAB_SUITE}" "${root}" "${mirror}" \
            >"${BUILD_LOG}" 2>&1 \
            || { tail -20 "${BUILD_LOG}" >&2; die "debootstrap failed (log: ${BUILD_LOG})"; }
        log "debootstrap done in $((SECONDS - t0)) s; apt-get install $(package_list | tr ',' '\n' | wc -l) packages"
        labinv sources "${LAB_SUITE}" >"${root}/etc/apt/sources.list.d/debian.sources"
        rm -f "${root}/etc/apt/sources.list"
        chroot_install "${root}" || die "apt-get install in the image failed (log: ${BUILD_LOG})"
        log "packages installed, $((SECONDS - t0)) s so far"
        cp -a "${LAB_DIR}/image/rootfs/." "${root}/"
        [[ "${LAB_ARCH}" == "${NATIVE_ARCH}" ]] || cp -a "${LAB_DIR}/image/arm64/." "${root}/"
        install -m 0755 "${LAB_DIR}/image/customize.sh" "${root}/tmp/customize.sh"
        chroot "${root}" /bin/sh /tmp/customize.sh
        t0=${SECONDS}
        tar --numeric-owner --xattrs -C "${root}" -cf "${tarball}.part" .
        mv "${tarball}.part" "${tarball}"
        rm -rf --one-file-system "${root}"
        log "rootfs tarball $(du -h "${tarball}" | cut -f1) in $((SECONDS - t0)) s"
        # one image per arch in the cache: older tarballs go
        find "${CACHE_DIR}" -maxdepth 1 -name "rootfs-${LAB_ARCH}-*.tar" ! -name "$(basename "${tarball}")" -delete
    fi
    local t0=${SECONDS}
    podman import --quiet --arch "${LAB_ARCH}" \
        --change 'CMD ["/lib/systemd/systemd"]' \
        --change 'ENV container=podman' \
        --change 'STOPSIGNAL SIGRTMIN+3' \
        --message "pi-cluster lab ${LAB_SUITE} ${LAB_ARCH}" \
        "${tarball}" "${ref}" >/dev/null
    log "imported ${ref} in $((SECONDS - t0)) s"
    # older lab images of this arch go too (an image still used by a container stays)
    local old
    for old in $(podman images --format '{{.Repository}}:{{.Tag}}' | grep "^${IMAGE_REPO}:${LAB_ARCH}-" | grep -vx "${ref}"); do
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
    local t_start=${SECONDS} ref hosts
    cmd_image
    ref="$(image_ref)"
    mapfile -t hosts < <(lab_hosts)
    ((${#hosts[@]})) || die "no hosts"

    mkdir -p "${CACHE_DIR}/cp"
    if [[ ! -s "${KEY}" ]]; then
        ssh-keygen -q -t ed25519 -N '' -C "pi-cluster-lab" -f "${KEY}"
        log "lab SSH key ${KEY}"
    fi
    # the subnet is pi_cluster_subnet of the lab overrides: inventory and network agree
    local want_subnet net_subnet
    want_subnet="$(labinv lab-var pi_cluster_subnet)"
    if ! podman network exists "${LAB_NETWORK}"; then
        podman network create --subnet "${want_subnet}" --label "${LAB_LABEL}=1" "${LAB_NETWORK}" >/dev/null 2>&1
        log "network ${LAB_NETWORK} ${want_subnet}"
    fi
    net_subnet="$(podman network inspect -f '{{range .Subnets}}{{.Subnet}} {{end}}' "${LAB_NETWORK}" | awk '{print $1}')"
    [[ "${net_subnet}" == "${want_subnet}" ]] \
        || die "network ${LAB_NETWORK} has subnet ${net_subnet}, zz_lab.yml says ${want_subnet}: lab/lab.sh down first"

    # fixed address per host: a restarted container keeps it, as a Pi keeps its DHCP reservation
    local -A lab_ip=()
    local name addr
    while read -r name addr; do lab_ip["${name}"]="${addr}"; done < <(labinv addresses "${SRC_INVENTORY}" "${net_subnet}")
    local h arch_args=() created=0 started=0
    [[ "${LAB_ARCH}" == "${NATIVE_ARCH}" ]] || arch_args=(--arch "${LAB_ARCH}" --stop-timeout 2)
    [[ "${LAB_ARCH}" == "${NATIVE_ARCH}" ]] || binfmt_arm64
    for h in "${hosts[@]}"; do
        if podman container exists "${h}"; then
            [[ "$(podman inspect -f '{{.ImageName}}' "${h}")" == "${ref}" ]] \
                || log "${h} runs an older lab image; lab/lab.sh down && lab/lab.sh up renews it"
            if [[ "$(podman inspect -f '{{.State.Running}}' "${h}")" != true ]]; then
                log "start ${h}"
                podman start "${h}" >/dev/null
                started=$((started + 1))
            fi
            continue
        fi
        # --no-hosts: /etc/hosts is the image's own file, as on a Pi (base_os writes it); the hosts
        # still find each other through the network's DNS.
        podman run -d --systemd=always --network "${LAB_NETWORK}" --hostname "${h}" --name "${h}" --no-hosts \
            --ip "${lab_ip[${h}]:?no lab address for ${h}}" --label "${LAB_LABEL}=1" "${arch_args[@]}" "${ref}" >/dev/null
        # a new container: facts cached for an older one of the same name are stale
        rm -f "${FACT_CACHE}/${h}"
        created=$((created + 1))
        log "run ${h}"
    done

    # systemd up, key in pi's authorized_keys, sshd answering: all hosts in parallel
    local pids=() failed=0 pid
    for h in "${hosts[@]}"; do
        wait_host "${h}" "$((SECONDS + BOOT_TIMEOUT))" &
        pids+=("$!")
    done
    for pid in "${pids[@]}"; do wait "${pid}" || failed=$((failed + 1)); done
    ((failed == 0)) || die "${failed} host(s) did not come up (see above)"
    write_inventory "${hosts[@]}"
    log "lab up: ${#hosts[@]} hosts (created ${created}, started ${started}) in $((SECONDS - t_start)) s; inventory ${LAB_INVENTORY#"${REPO_ROOT}/"}"
}

wait_host() {
    local h="$1" deadline="$2" state ip pub
    pub="$(cat "${KEY}.pub")"
    while :; do
        state="$(podman exec "${h}" systemctl is-system-running 2>/dev/null || true)"
        [[ "${state}" == running || "${state}" == degraded ]] && break
        ((SECONDS < deadline)) || { log "${h}: systemd is '${state}' after ${BOOT_TIMEOUT} s"; return 1; }
        sleep 0.5
    done
    podman exec "${h}" sh -c '
        set -e
        install -d -m 0700 -o pi -g pi /home/pi/.ssh
        touch /home/pi/.ssh/authorized_keys
        grep -qxF "$1" /home/pi/.ssh/authorized_keys || printf "%s\n" "$1" >>/home/pi/.ssh/authorized_keys
        chown pi:pi /home/pi/.ssh/authorized_keys
        chmod 0600 /home/pi/.ssh/authorized_keys
        [ "$2" != degraded ] || echo "systemd degraded, failed units: $(systemctl --failed --plain --no-legend | cut -d" " -f1 | paste -sd" ")"
        ' sh "${pub}" "${state}" | while read -r line; do log "${h}: ${line}"; done
    ip="$(container_ip "${h}")"
    until ssh "${ssh_opts[@]}" -i "${KEY}" "pi@${ip}" true 2>/dev/null; do
        ((SECONDS < deadline)) || { log "${h}: sshd at ${ip} does not answer after ${BOOT_TIMEOUT} s"; return 1; }
        sleep 0.5
    done
}

write_inventory() {
    local h pairs=() subnet gateway
    for h in "$@"; do pairs+=(--address "${h}=$(container_ip "${h}")"); done
    subnet="$(podman network inspect -f '{{range .Subnets}}{{.Subnet}} {{end}}' "${LAB_NETWORK}" | awk '{print $1}')"
    gateway="$(podman network inspect -f '{{range .Subnets}}{{.Gateway}} {{end}}' "${LAB_NETWORK}" | awk '{print $1}')"
    local partial=()
    # a partial lab (LAB_HOSTS): the inventory holds only the hosts that run
    [[ -z "${LAB_HOSTS:-}" ]] || partial=(--partial)
    labinv write "${SRC_INVENTORY}" "${LAB_INVENTORY}" --key "${KEY}" --network "${LAB_NETWORK}" \
        --subnet "${subnet}" --gateway "${gateway}" "${partial[@]}" "${pairs[@]}"
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
    exec ssh "${ssh_opts[@]}" -i "${KEY}" "pi@$(container_ip "${h}")" "$@"
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
    rm -f "${LAB_INVENTORY}"
    rm -rf "${FACT_CACHE}"
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
}

case "${1:-}" in
    deps) cmd_deps ;;
    image) cmd_image ;;
    up) cmd_up ;;
    converge) shift; cmd_converge "$@" ;;
    status) cmd_status ;;
    ssh) shift; cmd_ssh "$@" ;;
    down | destroy) cmd_down ;;
    destroy-all) cmd_destroy_all ;;
    inventory) mapfile -t _h < <(lab_hosts); write_inventory "${_h[@]}" ;;
    *) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
