"""Testinfra checks of the host layers (roles base_os, storage_prereqs, nfs_server, k3s_server, k3s_agent)
after converge on the seven lab hosts (pi-master = k3s server + NFS server, pi-worker-02..07 = agents).

Every test checks something a role did: the lab image is a fresh Raspberry Pi OS Lite
(lab/packages.txt), so none of it is there before converge (tests/lab/mutation_check.sh shows
which tests fail when a role is left out). What the lab cannot show (kernel modules loaded, sysctl
applied, chrony/iscsid/nfs-server/k3s running) is tagged molecule-notest in the roles and not
asserted here; the files and enabled units that make them happen on a real Pi are.
"""

from __future__ import annotations

import json

import pytest
import yaml

testinfra_hosts = ["ansible://all"]


@pytest.fixture(scope="module")
def hostvars(host):
    return host.ansible.get_variables()


def groups_of(hostvars) -> set[str]:
    return set(hostvars.get("group_names", []))


def in_group(hostvars, group: str) -> bool:
    return group in groups_of(hostvars)


def read_root(host, path: str) -> str:
    with host.sudo():
        return host.file(path).content_string


# --- base_os ----------------------------------------------------------------------------------


def test_etc_hosts_lists_every_node(host, hostvars):
    content = host.file("/etc/hosts").content_string
    domain = hostvars.get("pi_cluster_domain", "stratdata.org")
    nodes = hostvars["groups"]["k3s_cluster"]
    assert len(nodes) >= 1
    entries = {}
    for line in content.splitlines():
        fields = line.split("#", 1)[0].split()
        for name in fields[1:]:
            entries.setdefault(name, []).append(fields[0])
    for node in nodes:
        assert node in entries, "%s missing from /etc/hosts" % node
        assert "%s.%s" % (node, domain) in entries
        assert len(entries[node]) == 1, "%s listed twice" % node
    assert "localhost" in entries


def test_time_zone(host, hostvars):
    tz = hostvars.get("pi_cluster_timezone", "UTC")
    localtime = host.file("/etc/localtime")
    assert localtime.is_symlink
    assert host.check_output("readlink /etc/localtime") == "/usr/share/zoneinfo/%s" % tz
    assert host.file("/etc/timezone").content_string.strip() == tz


def test_chrony_replaced_timesyncd(host):
    # a fresh Lite image syncs time with systemd-timesyncd; base_os installs chrony instead
    assert host.package("chrony").is_installed
    assert host.service("chrony").is_enabled
    assert host.file("/etc/chrony/conf.d/pi-cluster.conf").contains("^pool ")
    assert not host.package("systemd-timesyncd").is_installed


def test_cmdline_single_line_with_cgroup_flags_once(host):
    path = "/boot/firmware/cmdline.txt" if host.file("/boot/firmware/cmdline.txt").exists else "/boot/cmdline.txt"
    content = host.file(path).content_string
    lines = [line for line in content.split("\n") if line.strip()]
    assert len(lines) == 1, content
    tokens = lines[0].split()
    # only what current Pi kernels need (6.12 reports cgroup_memory=1 as unknown)
    assert tokens.count("cgroup_enable=memory") == 1, content
    assert not [t for t in tokens if t.startswith("cgroup_memory")], content
    assert "rootwait" in tokens  # the original arguments are kept


def test_swap_providers_gone(host):
    # the fresh image swaps: dphys-swapfile on bookworm, zram (systemd-zram-generator) on trixie
    for pkg in ("dphys-swapfile", "rpi-swap", "systemd-zram-generator"):
        assert not host.package(pkg).is_installed
    assert not host.file("/var/swap").exists
    fstab = host.file("/etc/fstab")
    if fstab.exists:
        for line in fstab.content_string.splitlines():
            fields = line.split()
            assert not (fields and not fields[0].startswith("#") and len(fields) > 2 and fields[2] == "swap"), line


def test_kernel_modules_file(host):
    modules = host.file("/etc/modules-load.d/k3s.conf")
    assert modules.exists and modules.user == "root"
    names = [ln.strip() for ln in modules.content_string.splitlines() if ln.strip() and not ln.startswith("#")]
    for module in ("overlay", "br_netfilter", "iscsi_tcp", "dm_crypt"):
        assert names.count(module) == 1


def test_sysctl_file(host):
    conf = host.file("/etc/sysctl.d/90-k3s.conf")
    assert conf.exists and conf.mode == 0o644
    settings = {}
    for line in conf.content_string.splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = (part.strip() for part in line.split("=", 1))
            settings[key] = value
    assert settings["net.ipv4.ip_forward"] == "1"
    assert settings["net.bridge.bridge-nf-call-iptables"] == "1"
    assert settings["net.bridge.bridge-nf-call-ip6tables"] == "1"


def test_journald_limits(host):
    dropin = host.file("/etc/systemd/journald.conf.d/90-pi-cluster.conf")
    assert dropin.exists
    assert dropin.contains("^Storage=volatile$") or dropin.contains("^SystemMaxUse=")
    assert dropin.contains("^RuntimeMaxUse=")


def test_sshd_hardened(host):
    dropin = host.file("/etc/ssh/sshd_config.d/01-pi-cluster-hardening.conf")
    assert dropin.exists and dropin.user == "root"
    with host.sudo():
        effective = host.check_output("/usr/sbin/sshd -T -C user=pi,host=localhost,addr=127.0.0.1").lower()
    for line in ("passwordauthentication no", "permitrootlogin no", "kbdinteractiveauthentication no"):
        assert line in effective.splitlines()
    assert host.service("ssh").is_running


# --- storage_prereqs --------------------------------------------------------------------------


def test_longhorn_packages_and_iscsid(host):
    for pkg in ("open-iscsi", "nfs-common", "cryptsetup"):
        assert host.package(pkg).is_installed
    assert host.service("iscsid").is_enabled


# --- nfs_server -------------------------------------------------------------------------------


def test_nfs_export(host, hostvars):
    if not in_group(hostvars, "nfs_server"):
        pytest.skip("not the NFS server host")
    path = hostvars.get("pi_cluster_nfs_export_path", "/srv/nfs/k8s")
    subnet = hostvars["pi_cluster_subnet"]
    assert host.package("nfs-kernel-server").is_installed
    assert host.file(path).is_directory
    lines = host.file("/etc/exports").content_string.splitlines()
    exports = [ln for ln in lines if ln.strip() and not ln.startswith("#")]
    assert "%s %s(rw,sync,no_subtree_check,no_root_squash)" % (path, subnet) in exports
    assert host.service("nfs-server").is_enabled


# --- k3s --------------------------------------------------------------------------------------


def test_k3s_server_config_and_unit(host, hostvars):
    if not in_group(hostvars, "k3s_server"):
        pytest.skip("not the k3s server")
    cfg = host.file("/etc/rancher/k3s/config.yaml")
    with host.sudo():
        assert cfg.exists and cfg.user == "root" and cfg.mode == 0o600
    config = yaml.safe_load(read_root(host, "/etc/rancher/k3s/config.yaml"))
    name = host.backend.get_hostname()
    assert config["node-ip"] == hostvars["ansible_host"]
    assert config["secrets-encryption"] is True
    assert str(config["write-kubeconfig-mode"]) == "0600"
    assert {hostvars["ansible_host"], name, "%s.%s" % (name, hostvars["pi_cluster_domain"])} <= set(config["tls-san"])
    assert isinstance(config["token"], str) and len(config["token"]) >= 16
    assert "traefik" not in config.get("disable", [])
    unit = host.file("/etc/systemd/system/k3s.service").content_string
    assert "Type=notify" in unit and "k3s \\\n    server" in unit
    assert host.service("k3s").is_enabled


def test_k3s_agent_config_and_unit(host, hostvars):
    if not in_group(hostvars, "k3s_agents"):
        pytest.skip("not a k3s agent")
    server = hostvars["groups"]["k3s_server"][0]
    server_address = host.ansible("debug", "var=hostvars['%s'].ansible_host" % server, check=False)
    config = yaml.safe_load(read_root(host, "/etc/rancher/k3s/config.yaml"))
    address = server_address.get("hostvars['%s'].ansible_host" % server)
    assert config["server"] == "https://%s:6443" % address
    assert config["node-ip"] == hostvars["ansible_host"]
    assert config["node-name"] == host.backend.get_hostname()
    assert isinstance(config["token"], str) and len(config["token"]) >= 16
    with host.sudo():
        assert host.file("/etc/rancher/k3s/config.yaml").mode == 0o600
    unit = host.file("/etc/systemd/system/k3s-agent.service").content_string
    assert "Type=exec" in unit and "k3s \\\n    agent" in unit
    assert host.service("k3s-agent").is_enabled


# --- the roles' one read per host (pi_host_facts) ----------------------------------------------


def test_host_read_answers_as_systemctl(host):
    """pi_host_facts reads every unit with ONE `systemctl show`; its answers are what `systemctl is-enabled` /
    `is-active` say on this release's real systemd (an alias answers for the unit it names)."""
    units = ["chrony", "chrony-wait", "iscsid", "ssh", "multipathd.socket", "k3s", "k3s-agent",
             "no-such-unit-pi-cluster"]
    with host.sudo():
        args = json.dumps({"units": units + ["sshd"], "active_units": units})
        read = host.ansible("stratdata.pi_cluster.pi_host_facts", args, check=False)["ansible_facts"]["pi_host"]
        for unit in units:
            enabled = host.run("systemctl is-enabled %s", unit).stdout.strip() or "not-found"
            active = host.run("systemctl is-active %s", unit).stdout.strip()
            assert (unit, read["units"][unit]) == (unit, enabled)
            assert (unit, read["units_active"][unit]) == (unit, active)
    assert read["units"]["sshd"] == read["units"]["ssh"] == "enabled"
