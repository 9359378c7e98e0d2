"""playbooks/image.yml (role rpi_image, module rpi_boot_files) against REAL disk images.

Each test builds an MBR disk image with sfdisk, a FAT32 boot partition made by mkfs.fat at an
offset and a dummy second partition, seeds realistic bookworm- or trixie-style boot files with
mtools, runs playbooks/image.yml with ansible-playbook against a seven-host test inventory, then
reads every host's image back with mtools. Nothing is mounted; no root privileges are needed.
"""

import hashlib
import http.server
import os
import re
import shutil
import subprocess
import threading
from functools import partial
from pathlib import Path

import pytest
import yaml
from conftest import REPO, ansible_env, run_ansible

# Every test here runs ansible-playbook (or renders through it): not part of `make unit-fast`.
pytestmark = pytest.mark.ansible

HOSTS = {
    "pi-master": "192.168.10.10",
    "pi-worker-02": "192.168.10.11",
    "pi-worker-03": "192.168.10.12",
    "pi-worker-04": "192.168.10.13",
    "pi-worker-05": "192.168.10.14",
    "pi-worker-06": "192.168.10.15",
    "pi-worker-07": "192.168.10.16",
}
SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAITESTKEYtestkeyTESTKEYtestkeyTESTKEY0001 test@pi-cluster-tests"
CMDLINE = (
    "console=serial0,115200 console=tty1 root=PARTUUID=1234abcd-02 rootfstype=ext4 fsck.repair=yes rootwait\n"
)
CONFIG_TXT = """# For more options and information see
# http://rptl.io/configtxt
dtparam=audio=on
camera_auto_detect=1
display_auto_detect=1
auto_initramfs=1
dtoverlay=vc4-kms-v3d
max_framebuffers=2
disable_fw_kms_setup=1
arm_64bit=1
disable_overscan=1
arm_boost=1

[cm4]
otg_mode=1

[all]
"""
BOOT_START = 8192  # sectors, as in Raspberry Pi OS images
BOOT_SECTORS = 81920  # 40 MiB FAT32
ROOT_START = BOOT_START + BOOT_SECTORS
ROOT_SECTORS = 8192
ROOT_MARKER = b"PI-CLUSTER-TEST-ROOTFS-MARKER"
OFFSET = BOOT_START * 512
MT_ENV = dict(os.environ, MTOOLS_SKIP_CHECK="1")


def _run(cmd, **kw):
    return subprocess.run(cmd, check=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=MT_ENV, **kw)


def _tool(name):
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    assert path, "%s is required (apt: mtools / dosfstools / fdisk)" % name
    return path


def make_image(path: Path, style: str, cmdline: str = CMDLINE):
    """A real Raspberry-Pi-like disk image: MBR, FAT32 bootfs at 4 MiB, dummy root partition."""
    size = (ROOT_START + ROOT_SECTORS) * 512
    with open(path, "wb") as fh:
        fh.truncate(size)
    table = (
        "label: dos\nlabel-id: 0x1234abcd\nunit: sectors\n\n"
        "start=%d, size=%d, type=c\nstart=%d, size=%d, type=83\n" % (BOOT_START, BOOT_SECTORS, ROOT_START, ROOT_SECTORS)
    )
    _run([_tool("sfdisk"), "-q", str(path)], input=table.encode())
    _run([_tool("mkfs.fat"), "-F", "32", "-n", "BOOTFS", "--offset", str(BOOT_START), str(path),
          str(BOOT_SECTORS // 2)])
    with open(path, "r+b") as fh:
        fh.seek(ROOT_START * 512)
        fh.write(ROOT_MARKER)
    seed = path.parent / ("seed-" + path.stem)
    seed.mkdir()
    files = {"cmdline.txt": cmdline, "config.txt": CONFIG_TXT, "start4.elf": "firmware\n",
             "bcm2712-rpi-5-b.dtb": "dtb\n", "kernel8.img": "kernel\n"}
    if style == "bookworm":
        files["issue.txt"] = (
            "Raspberry Pi reference 2024-11-19\nGenerated using pi-gen, https://github.com/RPi-Distro/pi-gen, "
            "891df1e21ed2b6099a2e6a13e26c91dea44b34d4, stage2\n"
        )
    else:
        files["issue.txt"] = (
            "Raspberry Pi reference 2025-10-01\nGenerated using pi-gen, https://github.com/RPi-Distro/pi-gen, "
            "trixie, stage2\n"
        )
        files["user-data"] = "#cloud-config\n# default user-data shipped with the image\n"
        files["meta-data"] = "instance-id: rpios-image\n"
        files["network-config"] = "network:\n  version: 2\n  ethernets:\n    eth0:\n      dhcp4: true\n"
    for name, content in files.items():
        (seed / name).write_text(content)
        _run([_tool("mcopy"), "-i", "%s@@%d" % (path, OFFSET), str(seed / name), "::/" + name])
    return path


def mls(image: Path):
    out = _run([_tool("mdir"), "-b", "-i", "%s@@%d" % (image, OFFSET), "::/"]).stdout.decode()
    return sorted(line.strip()[3:] for line in out.splitlines() if line.strip().startswith("::/"))


def mcat(image: Path, name: str) -> str:
    return _run([_tool("mtype"), "-i", "%s@@%d" % (image, OFFSET), "::/" + name]).stdout.decode()


def write_inventory(root: Path, extra_group_vars=None):
    inv = root / "inventory"
    (inv / "group_vars" / "all").mkdir(parents=True)
    (inv / "host_vars").mkdir()
    workers = [h for h in HOSTS if h != "pi-master"]
    hosts = {
        "all": {
            "children": {
                "k3s_cluster": {
                    "children": {
                        "k3s_server": {"hosts": {"pi-master": None}},
                        "k3s_agents": {"hosts": {h: None for h in workers}},
                    }
                },
                "nfs_server": {"hosts": {"pi-master": None}},
                "longhorn_nodes": {"hosts": {h: None for h in workers}},
            }
        }
    }
    (inv / "hosts.yml").write_text(yaml.safe_dump(hosts))
    group_vars = {
        "pi_cluster_lab": False,
        "pi_cluster_domain": "stratdata.org",
        "pi_cluster_subnet": "192.168.10.0/24",
        "pi_cluster_gateway": "192.168.10.1",
        "pi_cluster_dns_servers": ["192.168.10.1", "9.9.9.9"],
        "pi_cluster_timezone": "Europe/Madrid",
        "pi_cluster_admin_user": "pi",
        "pi_cluster_ssh_public_key": SSH_KEY,
    }
    group_vars.update(extra_group_vars or {})
    (inv / "group_vars" / "all" / "main.yml").write_text(yaml.safe_dump(group_vars))
    for host, addr in HOSTS.items():
        (inv / "host_vars" / ("%s.yml" % host)).write_text(yaml.safe_dump({"ansible_host": addr}))
    return inv / "hosts.yml"


def image_playbook(inventory, *extra, check=False):
    args = ["ansible-playbook", "-i", str(inventory), "playbooks/image.yml"]
    if check:
        args += ["--check", "--diff"]
    for item in extra:
        args += ["-e", item]
    return run_ansible(args, env=ansible_env(ANSIBLE_FORCE_COLOR="0"))


def recap(stdout):
    """{'ok': n, 'changed': n, 'failed': n} for localhost from the PLAY RECAP."""
    match = re.search(r"^localhost\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", stdout, re.M)
    assert match, stdout[-3000:]
    return dict(zip(("ok", "changed", "unreachable", "failed"), map(int, match.groups())))


def assert_cmdline(text, style):
    lines = text.split("\n")
    assert len([ln for ln in lines if ln.strip()]) == 1, "cmdline.txt must stay ONE line: %r" % text
    tokens = lines[0].split()
    # the original arguments are all still there, in order, at the start
    assert tokens[:6] == CMDLINE.split()
    # only what current Pi kernels need: 6.12 kernels report cgroup_memory=1 as unknown
    assert tokens.count("cgroup_enable=memory") == 1, text
    assert not [t for t in tokens if t.startswith("cgroup_memory")], text
    if style == "bookworm":
        assert tokens.count("systemd.run=/boot/firmware/firstrun.sh") == 1
        assert tokens.count("systemd.run_success_action=reboot") == 1
        assert tokens.count("systemd.unit=kernel-command-line.target") == 1
    else:
        assert not any(t.startswith("systemd.run") for t in tokens)


def check_bookworm_host(image: Path, host: str):
    names = mls(image)
    for name in ("ssh", "userconf.txt", "firstrun.sh", "cmdline.txt", "config.txt", "issue.txt"):
        assert name in names, (host, names)
    assert "user-data" not in names
    assert_cmdline(mcat(image, "cmdline.txt"), "bookworm")
    assert mcat(image, "config.txt") == CONFIG_TXT
    assert mcat(image, "userconf.txt").strip() == "pi:*"
    assert mcat(image, "ssh") == ""
    firstrun = mcat(image, "firstrun.sh")
    assert firstrun.startswith("#!/bin/bash\n")
    assert "NEW_HOSTNAME=%s\n" % host in firstrun
    assert "ADDRESS=%s/24\n" % HOSTS[host] in firstrun
    assert "GATEWAY=192.168.10.1\n" in firstrun
    assert "DNS='192.168.10.1;9.9.9.9;'\n" in firstrun
    assert "TIMEZONE=Europe/Madrid\n" in firstrun
    assert "SSH_KEY='%s'\n" % SSH_KEY in firstrun
    assert "PasswordAuthentication no" in firstrun
    assert "rm -f /boot/firmware/firstrun.sh" in firstrun
    # syntax of the generated script
    script = image.parent / ("firstrun-%s.sh" % host)
    script.write_text(firstrun)
    subprocess.run(["bash", "-n", str(script)], check=True)


def check_trixie_host(image: Path, host: str):
    names = mls(image)
    for name in ("user-data", "meta-data", "network-config", "cmdline.txt", "config.txt"):
        assert name in names, (host, names)
    assert "firstrun.sh" not in names and "userconf.txt" not in names
    assert_cmdline(mcat(image, "cmdline.txt"), "trixie")
    user_data_text = mcat(image, "user-data")
    assert user_data_text.startswith("#cloud-config\n")
    user_data = yaml.safe_load(user_data_text)
    assert user_data["hostname"] == host
    assert user_data["fqdn"] == "%s.stratdata.org" % host
    assert user_data["timezone"] == "Europe/Madrid"
    assert user_data["ssh_pwauth"] is False
    (user,) = user_data["users"]
    assert user["name"] == "pi"
    assert user["lock_passwd"] is True
    assert user["ssh_authorized_keys"] == [SSH_KEY]
    assert "passwd" not in user
    # cloud-init switches SSH on itself (enable_ssh is no cloud-init key) and leaves /etc/hosts to
    # base_os (it runs at every boot: manage_etc_hosts: true would undo base_os after each reboot)
    assert "enable_ssh" not in user_data
    assert user_data["manage_etc_hosts"] is False
    assert ["systemctl", "enable", "--now", "--no-block", "ssh.service"] in user_data["runcmd"]
    net = yaml.safe_load(mcat(image, "network-config"))["network"]
    eth0 = net["ethernets"]["eth0"]
    assert eth0["dhcp4"] is False
    assert eth0["addresses"] == ["%s/24" % HOSTS[host]]
    assert eth0["routes"] == [{"to": "default", "via": "192.168.10.1"}]
    assert eth0["nameservers"]["addresses"] == ["192.168.10.1", "9.9.9.9"]
    meta = yaml.safe_load(mcat(image, "meta-data"))
    assert meta["local-hostname"] == host
    assert meta["instance-id"] == "pi-cluster-%s" % host


def root_partition_intact(image: Path):
    with open(image, "rb") as fh:
        fh.seek(ROOT_START * 512)
        return fh.read(len(ROOT_MARKER)) == ROOT_MARKER


@pytest.mark.parametrize("style", ["bookworm", "trixie"])
def test_image_per_host_and_idempotent(tmp_path, style):
    base = make_image(tmp_path / ("raspios-%s.img" % style), style)
    base_sha = hashlib.sha256(base.read_bytes()).hexdigest()
    inventory = write_inventory(tmp_path)
    out = tmp_path / "images"

    first = image_playbook(inventory, "rpi_image_base_image=%s" % base, "rpi_image_output_dir=%s" % out)
    assert first.returncode == 0, first.stdout[-4000:]
    # one change per host image + the output directory
    assert recap(first.stdout)["changed"] == len(HOSTS) + 1, first.stdout[-4000:]
    assert sorted(p.name for p in out.glob("*.img")) == sorted("%s.img" % h for h in HOSTS)
    for host in HOSTS:
        image = out / ("%s.img" % host)
        assert image.stat().st_size == base.stat().st_size
        assert root_partition_intact(image)
        (check_bookworm_host if style == "bookworm" else check_trixie_host)(image, host)
    # the base image is never modified
    assert hashlib.sha256(base.read_bytes()).hexdigest() == base_sha

    second = image_playbook(inventory, "rpi_image_base_image=%s" % base, "rpi_image_output_dir=%s" % out)
    assert second.returncode == 0, second.stdout[-4000:]
    assert recap(second.stdout)["changed"] == 0, second.stdout[-4000:]


def test_image_style_override_and_messy_cmdline(tmp_path):
    """Forced bookworm on a trixie-looking image; cmdline with cgroup_memory=0, a duplicate flag and a
    user's own cgroup_enable=cpuset (kept)."""
    messy = CMDLINE.rstrip("\n") + " cgroup_memory=0 cgroup_enable=memory quiet"
    messy += " cgroup_enable=cpuset cgroup_enable=memory\n"
    base = make_image(tmp_path / "base.img", "trixie", cmdline=messy)
    inventory = write_inventory(tmp_path)
    out = tmp_path / "images"
    res = image_playbook(inventory, "rpi_image_base_image=%s" % base, "rpi_image_output_dir=%s" % out,
                         "rpi_image_style=bookworm")
    assert res.returncode == 0, res.stdout[-4000:]
    for host in HOSTS:
        image = out / ("%s.img" % host)
        text = mcat(image, "cmdline.txt")
        tokens = text.split()
        assert text.count("\n") == 1 and text.endswith("\n")
        assert "cgroup_memory=0" not in tokens and "cgroup_memory=1" not in tokens
        assert tokens.count("cgroup_enable=memory") == 1
        assert tokens.count("cgroup_enable=cpuset") == 1
        assert "quiet" in tokens
        assert "NEW_HOSTNAME=%s\n" % host in mcat(image, "firstrun.sh")


def test_image_check_mode_writes_nothing(tmp_path):
    base = make_image(tmp_path / "base.img", "trixie")
    inventory = write_inventory(tmp_path)
    out = tmp_path / "images"
    res = image_playbook(inventory, "rpi_image_base_image=%s" % base, "rpi_image_output_dir=%s" % out, check=True)
    assert res.returncode == 0, res.stdout[-4000:]
    assert recap(res.stdout)["changed"] == len(HOSTS) + 1  # 7 images + the output directory
    assert "ssh_authorized_keys" in res.stdout  # diff shows the would-be user-data
    assert not list(out.glob("*.img"))


def test_boot_dir_mode(tmp_path):
    """A flashed SD card mounted on the control machine: only the named host, in place."""
    boot = tmp_path / "bootfs"
    boot.mkdir()
    (boot / "cmdline.txt").write_text(CMDLINE)
    (boot / "config.txt").write_text(CONFIG_TXT)
    (boot / "issue.txt").write_text("Raspberry Pi reference 2024-11-19\n")
    inventory = write_inventory(tmp_path)
    args = ("rpi_image_boot_dir=%s" % boot, "rpi_image_boot_dir_host=pi-worker-05")
    res = image_playbook(inventory, *args)
    assert res.returncode == 0, res.stdout[-4000:]
    assert_cmdline((boot / "cmdline.txt").read_text(), "bookworm")
    assert "NEW_HOSTNAME=pi-worker-05\n" in (boot / "firstrun.sh").read_text()
    assert "ADDRESS=192.168.10.14/24\n" in (boot / "firstrun.sh").read_text()
    assert (boot / "ssh").exists() and (boot / "userconf.txt").read_text() == "pi:*\n"
    again = image_playbook(inventory, *args)
    assert again.returncode == 0 and recap(again.stdout)["changed"] == 0, again.stdout[-4000:]


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture()
def http_dir(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, "http://127.0.0.1:%d" % server.server_address[1]
    server.shutdown()
    server.server_close()


def test_download_verifies_sha256(tmp_path, http_dir):
    """A base image fetched from a URL (.img.xz) is SHA-256 checked; a wrong checksum stops the play."""
    www, url = http_dir
    base = make_image(tmp_path / "raspios-lite.img", "trixie")
    subprocess.run([_tool("xz"), "-0", "--keep", str(base)], check=True)
    shutil.move(str(base) + ".xz", www / "raspios-lite.img.xz")
    good = hashlib.sha256((www / "raspios-lite.img.xz").read_bytes()).hexdigest()
    inventory = write_inventory(tmp_path)
    cache, out = tmp_path / "cache", tmp_path / "images"

    bad = image_playbook(inventory, "rpi_image_base_url=%s/raspios-lite.img.xz" % url,
                         "rpi_image_base_sha256=%s" % ("0" * 64), "rpi_image_cache_dir=%s" % cache,
                         "rpi_image_output_dir=%s" % out)
    assert bad.returncode != 0
    assert "checksum" in bad.stdout.lower(), bad.stdout[-3000:]
    assert not out.exists() or not list(out.glob("*.img"))

    missing = image_playbook(inventory, "rpi_image_base_url=%s/raspios-lite.img.xz" % url,
                             "rpi_image_cache_dir=%s" % cache, "rpi_image_output_dir=%s" % out)
    assert missing.returncode != 0 and "rpi_image_base_sha256" in missing.stdout

    ok = image_playbook(inventory, "rpi_image_base_url=%s/raspios-lite.img.xz" % url, "rpi_image_base_sha256=%s" % good,
                        "rpi_image_cache_dir=%s" % cache, "rpi_image_output_dir=%s" % out)
    assert ok.returncode == 0, ok.stdout[-4000:]
    assert (cache / "raspios-lite.img").exists()
    check_trixie_host(out / "pi-master.img", "pi-master")


def test_bad_address_fails_before_any_image(tmp_path):
    base = make_image(tmp_path / "base.img", "bookworm")
    inventory = write_inventory(tmp_path)
    (inventory.parent / "host_vars" / "pi-worker-07.yml").write_text("ansible_host: 10.0.0.7\n")
    out = tmp_path / "images"
    res = image_playbook(inventory, "rpi_image_base_image=%s" % base, "rpi_image_output_dir=%s" % out)
    assert res.returncode != 0
    assert "pi-worker-07: ansible_host must be an IP address inside 192.168.10.0/24" in res.stdout
    assert not out.exists()


def test_module_documentation_is_valid():
    res = run_ansible(["ansible-doc", "-t", "module", "stratdata.pi_cluster.rpi_boot_files"], cwd=REPO)
    assert res.returncode == 0, res.stdout
    assert "mtools" in res.stdout
