#!/bin/bash
# Stop what k3s started on this node and remove its runtime state, as upstream's k3s-killall.sh does.
# Prints "removed: <what>" for each thing it removed and nothing else, so a second run prints nothing.
set -u
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# --- processes: every process in a k3s unit's or a pod's cgroup, the containerd shims and their trees
k3s_pids() {
    grep -lE '/k3s(-agent)?\.service|kubepods' /proc/[0-9]*/cgroup 2>/dev/null | cut -d/ -f3
    ps -e -o pid= -o args= | awk '$2 ~ /k3s\/data\/[^\/]*\/bin\/containerd-shim/ {print $1}'
}
descendants() {  # the given pids and all their descendants
    ps -e -o pid= -o ppid= | awk -v roots="$*" '
        BEGIN { n = split(roots, r, " "); for (i = 1; i <= n; i++) keep[r[i]] = 1 }
        { parent[$1] = $2 }
        END {
            do { grew = 0; for (p in parent) if (!(p in keep) && (parent[p] in keep)) { keep[p] = 1; grew = 1 } } while (grew)
            for (p in keep) if (p in parent) print p
        }'
}
for attempt in 1 2 3; do
    roots=$(k3s_pids | grep -vx "$$" | sort -u | tr '\n' ' ')
    [ -n "${roots// /}" ] || break
    pids=$(descendants ${roots} | grep -vx "$$" | sort -n | tr '\n' ' ')
    [ -n "${pids// /}" ] || break
    kill -9 ${pids} 2>/dev/null
    echo "removed: processes ${pids% }"
    sleep 1
done

# --- mounts (deepest first)
mounts=$(awk '$2 ~ "^(/run/k3s|/var/lib/kubelet|/var/lib/rancher/k3s|/run/netns/cni-)" {print $2}' /proc/self/mounts | sort -ru)
for m in ${mounts}; do
    umount -f "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || continue
    echo "removed: mount $m"
done

# --- CNI network namespaces, veths on cni0, the CNI links
if command -v ip >/dev/null; then
    for ns in $(ip netns list 2>/dev/null | awk '$1 ~ /^cni-/ {print $1}'); do
        ip netns delete "$ns" 2>/dev/null && echo "removed: netns $ns"
    done
    for iface in $(ip -o link show master cni0 2>/dev/null | awk -F': ' '{sub(/@.*/, "", $2); print $2}'); do
        ip link delete "$iface" 2>/dev/null && echo "removed: link $iface"
    done
    for link in cni0 flannel.1 flannel-v6.1 flannel-wg flannel-wg-v6 kube-ipvs0; do
        ip link show "$link" >/dev/null 2>&1 || continue
        ip link delete "$link" 2>/dev/null && echo "removed: link $link"
    done
fi

# --- iptables (legacy and nft back ends alike) and nftables tables of kube-proxy / flannel
for save in iptables-save ip6tables-save iptables-legacy-save ip6tables-legacy-save iptables-nft-save ip6tables-nft-save; do
    command -v "$save" >/dev/null || continue
    restore=${save/-save/-restore}
    rules=$("$save" 2>/dev/null) || continue
    if grep -qiE 'KUBE-|CNI-|flannel' <<<"${rules}"; then
        grep -viE 'KUBE-|CNI-|flannel' <<<"${rules}" | "$restore" && echo "removed: ${save%-save} rules KUBE-/CNI-/flannel"
    fi
done
if command -v nft >/dev/null; then
    nft list tables 2>/dev/null | awk 'tolower($3) ~ /kube-proxy|kube-router|flannel/ {print $2, $3}' | while read -r family name; do
        nft delete table "$family" "$name" 2>/dev/null && echo "removed: nft table $family $name"
    done
fi
exit 0
