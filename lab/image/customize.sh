#!/bin/sh
# Runs inside the debootstrapped root (chroot) while `lab/lab.sh image` builds the lab image:
#   /tmp/customize.sh SUITE
# Part of the image hash: editing it rebuilds the cached image.
# The result is a fresh Raspberry Pi OS Lite as Imager flashes it, before its first boot: no admin
# user, no SSH key, SSH off, hostname "raspberrypi". The first boot (cloud-init on trixie,
# firstrun.sh on bookworm) gets all of that from the boot files the rpi_image role writes.
set -eu
suite="$1"

# Every container generates its own SSH host keys at boot (ssh.service.d/10-lab-hostkeys.conf),
# as Raspberry Pi OS does (regenerate_ssh_host_keys.service).
rm -f /etc/ssh/ssh_host_*

# systemd boots as PID 1 in a podman container: no consoles, no udev, no rootfs remount, no swap
# device. apt's timers are masked so they never hold the dpkg lock in the
# middle of a converge. nfsd and rpc_pipefs cannot be mounted in a container (no kernel NFS; the
# roles install nfs-common / nfs-kernel-server): masked so that systemd reports "running".
for unit in getty.target console-getty.service getty@.service serial-getty@.service \
    systemd-udevd.service systemd-udevd-control.socket systemd-udevd-kernel.socket \
    systemd-udev-trigger.service systemd-udev-settle.service systemd-remount-fs.service \
    apt-daily.timer apt-daily-upgrade.timer proc-fs-nfsd.mount run-rpc_pipefs.mount; do
    ln -sfn /dev/null "/etc/systemd/system/${unit}"
done

# SSH is off on a fresh image: the first boot switches it on (cloud-init runcmd / firstrun.sh).
systemctl disable ssh.service >/dev/null 2>&1 || true
systemctl enable lab-kernel-cmdline.service

# Empty machine-id: systemd makes a transient one per container at boot.
: > /etc/machine-id
rm -f /var/lib/dbus/machine-id

# The host name of a fresh image (first boot renames it).
echo raspberrypi > /etc/hostname

# Groups of Raspberry Pi OS (udev rules and raspberrypi-sys-mods create them there) that the
# first boot puts the admin user into.
for g in adm dialout cdrom audio video plugdev games users input render netdev gpio i2c spi; do
    getent group "${g}" >/dev/null || groupadd --system "${g}"
done
# Raspberry Pi OS's sudoers keeps the sudo group's rule; the first boot adds the admin's own.
visudo -cq

if [ "${suite}" = trixie ]; then
    # cloud-init runs at every boot and takes its seed from /boot/firmware (cloud.cfg.d/99_raspberry-pi.cfg)
    rm -rf /var/lib/cloud/*
fi

# Smaller image, faster tar/import: no package lists (the roles run apt with update_cache, as on
# a fresh Pi), no docs, man pages or translations.
apt-get clean
rm -rf /var/lib/apt/lists/* /usr/share/doc/* /usr/share/man/* /usr/share/info/*
rm -rf /var/log/*.log /var/log/apt/* /tmp/* /var/tmp/*
