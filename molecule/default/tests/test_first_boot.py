"""Testinfra checks of the image layer's first boot (role rpi_image) on the lab hosts.

lab/lab.sh up runs the rpi_image role (boot-dir mode) for each host and boots the container from
that boot partition. The image is a fresh Raspberry Pi OS Lite: no admin user, no key, SSH off,
host name "raspberrypi". On trixie hosts cloud-init (Debian's package) read the NoCloud seed
(user-data, meta-data, network-config); on bookworm hosts firstrun.sh ran from cmdline.txt's
systemd.run= and rebooted. These tests show that the first boot, not the lab, made the admin user,
its key, sudo rule, host name and SSH service — and that they survived the lab's reboot.
"""

from __future__ import annotations

import pytest
import yaml

testinfra_hosts = ["ansible://all"]


@pytest.fixture(scope="module")
def hostvars(host):
    return host.ansible.get_variables()


@pytest.fixture(scope="module")
def release(host) -> str:
    return host.system_info.codename


def root_read(host, path: str) -> str:
    with host.sudo():
        return host.file(path).content_string


def authorized_keys(host, user: str) -> list[str]:
    home = host.user(user).home
    return [ln.strip() for ln in root_read(host, f"{home}/.ssh/authorized_keys").splitlines() if ln.strip()]


def lab_public_key(hostvars) -> str:
    with open(hostvars["lab_ssh_key"] + ".pub", encoding="utf-8") as fh:
        return fh.read().strip()


def test_release_is_one_of_the_lab_releases(release):
    assert release in {"bookworm", "trixie"}


def test_admin_user_key_and_sudo_from_the_boot_files(host, hostvars):
    user = hostvars["pi_cluster_admin_user"]
    assert host.user().name == user  # this very SSH login is the admin user's
    assert lab_public_key(hostvars) in authorized_keys(host, user)
    assert host.run("sudo -n true").rc == 0
    assert "sudo" in host.user(user).groups


def test_hostname_file_written_at_first_boot(host):
    # the image says "raspberrypi"; cloud-init (trixie) / firstrun.sh (bookworm) wrote the new name
    assert host.file("/etc/hostname").content_string.strip() == host.backend.get_hostname()


def test_ssh_switched_on_by_the_first_boot(host):
    # SSH is disabled in the image: enabled by cloud-init's runcmd (trixie) or firstrun.sh (bookworm)
    assert host.service("ssh").is_enabled
    assert host.service("ssh").is_running


def test_trixie_cloud_init_done_and_made_the_user(host, hostvars, release):
    if release != "trixie":
        pytest.skip("bookworm: firstrun.sh, not cloud-init")
    user = hostvars["pi_cluster_admin_user"]
    with host.sudo():
        status = host.run("cloud-init status --long")
        log = host.file("/var/log/cloud-init.log").content_string
        schema = host.run("cloud-init schema --system")
        platform = host.check_output("cloud-init query v1.platform")
        subplatform = host.check_output("cloud-init query v1.subplatform")
    assert "status: done" in status.stdout, status.stdout + status.stderr
    # the user-data the image layer wrote validates with the cloud-init that consumed it
    assert schema.rc == 0, schema.stdout + schema.stderr
    # origin of the admin user: cloud-init's users module, from the NoCloud seed on /boot/firmware
    assert f"Adding user {user}" in log
    assert platform == "nocloud"
    assert "file:///boot/firmware/" in subplatform  # the boot partition rpi_image wrote
    sudoers = root_read(host, "/etc/sudoers.d/90-cloud-init-users")
    assert f"{user} ALL=(ALL) NOPASSWD:ALL" in sudoers


def test_trixie_address_is_the_one_network_config_names(host, hostvars, release):
    if release != "trixie":
        pytest.skip("bookworm: the address is in a NetworkManager keyfile")
    net = yaml.safe_load(host.file("/boot/firmware/network-config").content_string)["network"]
    (address,) = net["ethernets"]["eth0"]["addresses"]
    assert address.split("/")[0] == hostvars["ansible_host"]
    assert address.split("/")[0] in host.interface("eth0").addresses


def test_bookworm_firstrun_ran_once_and_removed_itself(host, hostvars, release):
    if release != "bookworm":
        pytest.skip("trixie: cloud-init, not firstrun.sh")
    user = hostvars["pi_cluster_admin_user"]
    assert not host.file("/boot/firmware/firstrun.sh").exists
    cmdline = host.file("/boot/firmware/cmdline.txt").content_string
    assert "systemd.run" not in cmdline and "kernel-command-line.target" not in cmdline
    assert host.file("/boot/firmware/userconf.txt").exists
    assert f"{user} ALL=(ALL) NOPASSWD: ALL" in root_read(host, "/etc/sudoers.d/010_pi-cluster-admin")
    assert host.file("/etc/ssh/sshd_config.d/01-pi-cluster-firstboot.conf").contains("^PasswordAuthentication no")
    keyfile = root_read(host, "/etc/NetworkManager/system-connections/pi-cluster-eth0.nmconnection")
    assert f"address1={hostvars['ansible_host']}/" in keyfile
