"""Testinfra checks of the podman lab itself (molecule verify, scenario default).

They check that the containers are faithful enough stand-ins for the Pis: systemd as PID 1,
SSH as `pi` with passwordless sudo, per-host identity (host keys, machine-id), Raspberry Pi OS
boot files, name resolution between the hosts. The host-layer roles are checked in
test_host_layers.py.
"""

from __future__ import annotations

import functools

import pytest
import testinfra

testinfra_hosts = ["ansible://all"]

LAB_HOSTS = {"pi-master", *(f"pi-worker-0{i}" for i in range(2, 8))}


@functools.cache
def _all_hosts(inventory: str) -> dict[str, testinfra.host.Host]:
    names = testinfra.get_hosts(["ansible://all"], ansible_inventory=inventory)
    return {h.backend.get_hostname(): h for h in names}


@pytest.fixture(scope="module")
def all_hosts(request: pytest.FixtureRequest) -> dict[str, testinfra.host.Host]:
    return _all_hosts(request.config.option.ansible_inventory)


def test_inventory_is_the_seven_pis(all_hosts):
    assert set(all_hosts) == LAB_HOSTS


def test_hostname_matches_inventory(host):
    assert host.check_output("hostname") == host.backend.get_hostname()


def test_systemd_is_pid1_and_running(host):
    assert host.check_output("cat /proc/1/comm") == "systemd"
    state = host.run("systemctl is-system-running").stdout.strip()
    assert state in {"running", "degraded"}, state


def test_ssh_as_pi_with_passwordless_sudo(host):
    assert host.user().name == "pi"
    assert host.run("sudo -n true").rc == 0
    with host.sudo():
        assert host.check_output("id -u") == "0"


def test_sshd_running_with_own_host_keys(host):
    assert host.service("ssh").is_running
    for key_type in ("rsa", "ecdsa", "ed25519"):
        assert host.file(f"/etc/ssh/ssh_host_{key_type}_key.pub").exists


def test_host_keys_and_machine_ids_are_unique(all_hosts):
    keys = {n: h.check_output("cat /etc/ssh/ssh_host_ed25519_key.pub").split()[1] for n, h in all_hosts.items()}
    ids = {n: h.check_output("cat /etc/machine-id") for n, h in all_hosts.items()}
    assert len(set(keys.values())) == len(keys), keys
    assert all(len(i) == 32 for i in ids.values()), ids
    assert len(set(ids.values())) == len(ids), ids


def test_raspberry_pi_os_boot_files(host):
    cmdline = host.file("/boot/firmware/cmdline.txt")
    assert cmdline.is_file
    assert "root=PARTUUID=" in cmdline.content_string
    assert "rootwait" in cmdline.content_string
    assert len(cmdline.content_string.strip().splitlines()) == 1
    assert host.file("/boot/firmware/config.txt").contains("arm_64bit=1")


def test_no_device_tree_model(host):
    # Not a Pi: code that reads the board model must cope with its absence in the lab.
    assert not host.file("/proc/device-tree/model").exists


def test_debian_bookworm_with_python3(host):
    assert host.system_info.distribution == "debian"
    assert host.system_info.codename == "bookworm"
    assert host.exists("python3")


def test_hosts_resolve_each_other(host):
    for name in sorted(LAB_HOSTS):
        assert host.run(f"getent hosts {name}").rc == 0, name


def test_consoles_and_udev_masked(host):
    for unit in ("console-getty.service", "systemd-udevd.service", "systemd-remount-fs.service"):
        assert host.run(f"systemctl is-enabled {unit}").stdout.strip() == "masked", unit
