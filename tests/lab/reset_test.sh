#!/usr/bin/env bash
# Reset test: playbooks/reset.yml, as a user runs it, against one node that holds what a running k3s
# agent leaves behind.
#
#   bash tests/lab/reset_test.sh          (make reset-test; needs the lab image: lab/lab.sh image)
#
# The node is a container from the lab image named RESET_CONTAINER (hostname pi-worker-05), reached with
# the podman connection; it gets NET_ADMIN and SYS_ADMIN so that it can hold the network namespaces,
# links, iptables rules and mounts of a k3s node (the lab's own hosts have neither capability). Stand-ins:
# a k3s-agent.service with KillMode=process whose child process keeps running after `systemctl stop`
# (a container's process), a tmpfs under /run/k3s (a container rootfs), netns cni-… holding a pod's end
# of a veth pair, flannel.1 (vxlan, as flannel makes it), cni0 (a veth: this kernel has no bridge driver), KUBE-/CNI-/FLANNEL- iptables chains, k3s's files.
# 1. without confirmation (no terminal) the reset is refused and the stand-in process still runs
# 2. with -e confirm_reset=yes: no process, mount, netns, link, rule or file of k3s is left
# 3. a second reset reports changed=0
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "${REPO_ROOT}"
export CONTAINERS_CONF="${REPO_ROOT}/lab/containers.conf"
export ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0 ANSIBLE_STDOUT_CALLBACK=default
NODE="${RESET_CONTAINER:-pi-cluster-reset-test}"
WORK="$(mktemp -d /tmp/pi-cluster-reset.XXXXXX)"
VENV="${PI_CLUSTER_VENV:-${XDG_CACHE_HOME:-${HOME}/.cache}/pi-cluster/venv}"
export PATH="${VENV}/bin:${PATH}"
say() { printf '[reset %(%H:%M:%S)T] %s\n' -1 "$*"; }
fail() { say "FAIL: $*"; exit 1; }
cleanup() { podman rm -f -t 2 "${NODE}" >/dev/null 2>&1 || true; rm -rf "${WORK}"; }
trap cleanup EXIT

lab_image() { podman images --format '{{.Repository}}:{{.Tag}}' | grep -m1 '^localhost/pi-cluster-lab:bookworm-amd64-' || true; }
image="$(lab_image)"
[[ -n "${image}" ]] || { bash lab/lab.sh image bookworm >/dev/null; image="$(lab_image)"; }
[[ -n "${image}" ]] || fail "no bookworm lab image (lab/lab.sh image bookworm)"
podman rm -f -t 2 "${NODE}" >/dev/null 2>&1 || true
podman run -d --name "${NODE}" --hostname pi-worker-05 --systemd=always --cap-add NET_ADMIN,SYS_ADMIN \
    "${image}" >/dev/null
for _ in $(seq 60); do
    state="$(podman exec "${NODE}" systemctl is-system-running 2>/dev/null || true)"
    [[ "${state}" == running || "${state}" == degraded ]] && break
    sleep 1
done
node() { podman exec "${NODE}" bash -c "$1"; }
node 'command -v iptables >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends iptables >/dev/null; }'

say "planting what a running k3s agent leaves behind in ${NODE}"
node '
set -e
install -m 0755 /bin/true /usr/local/bin/k3s
mkdir -p /etc/rancher/k3s /var/lib/rancher/k3s/agent/images /var/lib/kubelet/pods /var/lib/cni/networks
echo "server: https://10.0.0.1:6443" > /etc/rancher/k3s/config.yaml
cat > /etc/systemd/system/k3s-agent.service <<UNIT
[Service]
KillMode=process
ExecStart=/bin/sh -c "sleep 86400 & exec sleep 86401"
UNIT
systemctl daemon-reload && systemctl start k3s-agent
mkdir -p /run/k3s/containerd/io.containerd.runtime.v2.task/k8s.io/abc/rootfs
mount -t tmpfs tmpfs /run/k3s/containerd/io.containerd.runtime.v2.task/k8s.io/abc/rootfs
ip netns add cni-5f1c2a3b-0000-4000-8000-000000000001
ip link add cni0 type veth peer name cni0-peer  # a bridge on a real node; this kernel has no bridge driver
ip link add veth5f1c2a3b type veth peer name eth0 netns cni-5f1c2a3b-0000-4000-8000-000000000001
ip link add flannel.1 type vxlan id 1 dstport 8472 nolearning
iptables -N KUBE-SERVICES && iptables -A INPUT -j KUBE-SERVICES
iptables -N CNI-FORWARD && iptables -A FORWARD -j CNI-FORWARD
iptables -t nat -N FLANNEL-POSTRTG && iptables -t nat -A POSTROUTING -j FLANNEL-POSTRTG
'
node 'systemctl stop k3s-agent; pgrep -f "sleep 86400" >/dev/null' \
    || fail "the stand-in container process did not survive systemctl stop (KillMode=process)"

mkdir -p "${WORK}/inventory"
ln -s "${REPO_ROOT}/inventory/group_vars" "${WORK}/inventory/group_vars"
cat > "${WORK}/inventory/hosts.yml" <<INV
all:
  children:
    k3s_cluster:
      children:
        k3s_server:
          hosts:
            pi-master: {ansible_host: 192.0.2.10}
        k3s_agents:
          hosts:
            pi-worker-05: {ansible_connection: containers.podman.podman, ansible_host: ${NODE}, ansible_user: root}
INV
reset() {
    ansible-playbook -i "${WORK}/inventory/hosts.yml" playbooks/reset.yml --limit pi-worker-05 \
        --vault-password-file lab/vault-password.txt "$@" </dev/null
}

say "1. reset without confirmation"
if reset >"${WORK}/run0.log" 2>&1; then fail "reset ran without confirmation"; fi
grep -q "Reset not confirmed" "${WORK}/run0.log" || fail "no refusal message (see ${WORK}/run0.log)"
node 'pgrep -f "sleep 86400" >/dev/null' || fail "an unconfirmed reset changed the node"

say "2. reset with -e confirm_reset=yes"
reset -e confirm_reset=yes >"${WORK}/run1.log" 2>&1 || { cat "${WORK}/run1.log"; fail "reset failed"; }
grep -E '"removed' "${WORK}/run1.log" | sed 's/^ */    /'
left="$(node '
pgrep -f "sleep 8640[01]" | sed "s/^/process /"
awk "\$2 ~ \"^/run/k3s\" {print \"mount \" \$2}" /proc/self/mounts
ip netns list | awk "/^cni-/ {print \"netns \" \$1}"
for l in cni0 veth5f1c2a3b flannel.1; do ip link show "$l" >/dev/null 2>&1 && echo "link $l"; done
iptables-save | grep -iE "KUBE-|CNI-|flannel" | sed "s/^/rule /"
iptables-save -t nat | grep -iE "KUBE-|CNI-|flannel" | sed "s/^/rule /"
for f in /usr/local/bin/k3s /etc/rancher/k3s /var/lib/rancher/k3s /var/lib/kubelet /var/lib/cni /etc/systemd/system/k3s-agent.service; do
    [ -e "$f" ] && echo "file $f"
done
true')"
[[ -z "${left}" ]] || fail "left behind after the reset: ${left}"
say "   nothing of k3s left: no process, mount, netns, link, rule or file"

say "3. a second reset"
reset -e confirm_reset=yes >"${WORK}/run2.log" 2>&1 || { cat "${WORK}/run2.log"; fail "second reset failed"; }
grep -Eq '^pi-worker-05 +: ok=[0-9]+ +changed=0 +unreachable=0 +failed=0' "${WORK}/run2.log" \
    || { grep -A2 'PLAY RECAP' "${WORK}/run2.log"; fail "second reset changed something"; }
say "PASS: refused unconfirmed; removed everything; second run changed=0"
