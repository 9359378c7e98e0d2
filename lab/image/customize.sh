#!/bin/sh
# Runs inside the debootstrapped root (chroot) while `lab/lab.sh image` builds the lab image.
# Part of the image hash: editing it rebuilds the cached image.
set -eu

# Every container generates its own SSH host keys at boot (ssh.service.d/10-lab-hostkeys.conf).
rm -f /etc/ssh/ssh_host_*

# systemd boots as PID 1 in a podman container: no consoles, no udev, no rootfs remount.
# apt's timers are masked so they never hold the dpkg lock in the middle of a converge.
# nfsd and rpc_pipefs cannot be mounted in a container (no kernel NFS): masked so that systemd
# reports "running", not "degraded", and a failing unit stands out.
for unit in getty.target console-getty.service getty@.service serial-getty@.service \
    systemd-udevd.service systemd-udevd-control.socket systemd-udevd-kernel.socket \
    systemd-udev-trigger.service systemd-udev-settle.service systemd-remount-fs.service \
    apt-daily.timer apt-daily-upgrade.timer \
    proc-fs-nfsd.mount run-rpc_pipefs.mount; do
    ln -sfn /dev/null "/etc/systemd/system/${unit}"
done

# nfs-kernel-server is baked into every host but only the nfs_server host enables it (the nfs_server
# role); it cannot start in a container anyway.
systemctl disable nfs-server.service >/dev/null 2>&1 || true

# Empty machine-id: systemd makes a transient one per container at boot.
: > /etc/machine-id
rm -f /var/lib/dbus/machine-id

# The admin user of Raspberry Pi OS: `pi`, passwordless sudo, key-only SSH (lab/lab.sh up adds the key).
if ! id pi >/dev/null 2>&1; then
    useradd --create-home --shell /bin/bash --groups sudo pi
fi
usermod --password '*' pi
chmod 0440 /etc/sudoers.d/010_pi-nopasswd
visudo -cq

# Raspberry Pi OS boot partition files (root-owned, as on the FAT partition).
chmod 0755 /boot/firmware
chmod 0644 /boot/firmware/cmdline.txt /boot/firmware/config.txt

# Smaller image, faster tar/import: no package lists (the roles run apt with update_cache, as on
# a fresh Pi), no docs, man pages or translations.
apt-get clean
rm -rf /var/lib/apt/lists/* /usr/share/doc/* /usr/share/man/* /usr/share/info/* /usr/share/locale/*/
rm -rf /var/log/*.log /var/log/apt/* /tmp/* /var/tmp/*
