"""Bad input to the host-layer roles fails BEFORE anything changes.

Each case runs ansible-playbook on localhost (connection local) with a small test playbook that
calls the role (or its read-only check entry point) and asserts: non-zero exit, the role's own
message, changed=0, and that no changing task was reached. Runs that could touch this machine if
the check were broken use --check as a safety net.
"""

import hashlib
import os
import re
import subprocess
import textwrap
from pathlib import Path

import pytest
import yaml
from conftest import REPO, ansible_env, localhost_recap, run_ansible, run_playbook

# Every test here runs ansible-playbook (or renders through it): not part of `make unit-fast`.
pytestmark = pytest.mark.ansible

TEST_TOKEN = "pi-cluster-TEST-k3s-token-0123456789abcdef"


def write_inventory(tmp_path: Path, **host_vars):
    inv = tmp_path / "inventory"
    (inv / "group_vars" / "all").mkdir(parents=True)
    hosts = {
        "all": {
            "hosts": {"localhost": {"ansible_connection": "local", "ansible_host": "192.168.10.10"}},
            "children": {
                "k3s_cluster": {"children": {"k3s_server": {"hosts": {"localhost": None}}, "k3s_agents": {}}},
                "nfs_server": {"hosts": {"localhost": None}},
            },
        }
    }
    hosts["all"]["hosts"]["localhost"].update(host_vars)
    (inv / "hosts.yml").write_text(yaml.safe_dump(hosts))
    (inv / "group_vars" / "all" / "main.yml").write_text(
        yaml.safe_dump(
            {
                "pi_cluster_lab": False,
                "pi_cluster_domain": "stratdata.org",
                "pi_cluster_subnet": "192.168.10.0/24",
                "pi_cluster_k3s_version": "v1.33.5+k3s1",
                "pi_cluster_nfs_export_path": "/srv/nfs/k8s",
                "ansible_python_interpreter": "{{ ansible_playbook_python }}",
            }
        )
    )
    return inv / "hosts.yml"


def write_playbook(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "play.yml"
    path.write_text(textwrap.dedent(body))
    return path


play = run_playbook
recap = localhost_recap

# The task that checks the k3s version in each role (hand-written, from the roles' task files).
VERSION_CHECK_TASK = {
    "k3s_server": "k3s_server : Refuse a malformed k3s version or a node address that is not an IP",
    "k3s_agent": "k3s_agent : Refuse a malformed k3s version or addresses that are not IPs",
    "k3s_binary": "k3s_binary : Validate the k3s version and architecture",
}


def task_names(stdout):
    """The names of the tasks that ran, in order ("role : task"), without the argument-spec checks."""
    names = re.findall(r"^TASK \[(.+?)\] \*+", stdout, re.M)
    return [name for name in names if "Validating arguments against arg spec" not in name]


def assert_failed_unchanged(res, message):
    assert res.returncode != 0, res.stdout[-3000:]
    assert message in res.stdout, res.stdout[-3000:]
    counts = recap(res.stdout)
    assert counts["failed"] == 1 and counts["changed"] == 0, res.stdout[-3000:]


ROLE_PLAY = """
- name: Bad-input test
  hosts: localhost
  gather_facts: false
  roles:
    - role: {role}
"""


@pytest.mark.parametrize("role", ["k3s_server", "k3s_agent", "k3s_binary"])
@pytest.mark.parametrize("version", ["1.33.5+k3s1", "v1.33.5", "v1.33+k3s1", "latest"])
def test_bad_k3s_version_is_refused(tmp_path, role, version):
    inventory = write_inventory(tmp_path, vault_k3s_token=TEST_TOKEN, ansible_architecture="aarch64")
    playbook = write_playbook(tmp_path, ROLE_PLAY.format(role=role))
    res = play(inventory, playbook, "pi_cluster_k3s_version=%s" % version, check=True)
    assert_failed_unchanged(res, "v1.33.5+k3s1")
    assert "must look like v1.33.5+k3s1" in res.stdout
    # the version check is the last task that ran: nothing after it (no download, no install) was reached
    assert task_names(res.stdout)[-1] == VERSION_CHECK_TASK[role], task_names(res.stdout)
    actions = [name.split(" : ", 1)[-1] for name in task_names(res.stdout)]
    assert not any(action.startswith(("Install", "Download")) for action in actions), actions


@pytest.mark.parametrize("role", ["k3s_server", "k3s_agent"])
@pytest.mark.parametrize("token", [None, "", "   "])
def test_missing_token_is_refused(tmp_path, role, token):
    host_vars = {} if token is None else {"vault_k3s_token": token}
    inventory = write_inventory(tmp_path, **host_vars)
    playbook = write_playbook(tmp_path, ROLE_PLAY.format(role=role))
    res = play(inventory, playbook, check=True)
    assert res.returncode != 0
    assert recap(res.stdout)["changed"] == 0
    # no_log hides the assert's own message; the task name says what is wrong
    assert "Refuse a missing cluster token" in res.stdout
    assert "censored" in res.stdout
    assert "k3s_binary" not in res.stdout  # nothing after the check ran


def test_token_never_printed(tmp_path):
    """A good token passes validation and appears nowhere in the output (config task has no_log)."""
    inventory = write_inventory(tmp_path, vault_k3s_token=TEST_TOKEN)
    playbook = write_playbook(
        tmp_path,
        """
        - name: Validation and config rendering only
          hosts: localhost
          gather_facts: false
          tasks:
            - name: Validate
              ansible.builtin.include_role:
                name: stratdata.pi_cluster.k3s_server
                tasks_from: validate.yml
        """,
    )
    res = run_ansible(["ansible-playbook", "-vv", "--check", "-i", str(inventory), str(playbook)], env=ansible_env())
    assert res.returncode == 0, res.stdout[-3000:]
    assert "Refuse a missing cluster token" in res.stdout
    assert TEST_TOKEN not in res.stdout


@pytest.mark.parametrize(
    "network",
    ["10.0.0.0/8", "192.168.0.0/16", "192.168.11.0/24", "0.0.0.0/0", "*", "not-a-network"],
)
def test_nfs_export_outside_subnet_is_refused(tmp_path, network):
    inventory = write_inventory(tmp_path)
    playbook = write_playbook(tmp_path, ROLE_PLAY.format(role="nfs_server"))
    res = play(inventory, playbook, "nfs_server_export_network=%s" % network, check=True)
    assert_failed_unchanged(res, "must lie inside the")
    assert "cluster subnet 192.168.10.0/24" in res.stdout
    assert "Install the NFS server" not in res.stdout


def test_nfs_export_inside_subnet_passes_validation(tmp_path):
    inventory = write_inventory(tmp_path)
    playbook = write_playbook(
        tmp_path,
        """
        - name: Validation only
          hosts: localhost
          gather_facts: false
          tasks:
            - name: Validate
              ansible.builtin.include_role:
                name: stratdata.pi_cluster.nfs_server
                tasks_from: validate.yml
        """,
    )
    for network in ("192.168.10.0/24", "192.168.10.0/26", "192.168.10.7"):
        res = play(inventory, playbook, "nfs_server_export_network=%s" % network)
        assert res.returncode == 0, res.stdout[-3000:]


# --- data disk -------------------------------------------------------------------------------
# Real block devices: a sparse file attached to a loop device (losetup, as root), detached in teardown.
# The role accepts block devices only; a regular file is refused by name before anything is probed.

SBIN_ENV = {"PATH": "/usr/sbin:/sbin:/usr/bin:/bin"}


@pytest.fixture
def loop_device(tmp_path):
    """A 64 MiB loop device backed by a sparse file under tmp_path; always detached afterwards."""
    if os.geteuid() != 0:
        pytest.fail("the data-disk tests need root (losetup); run pytest as root")
    backing = tmp_path / "backing.img"
    with open(backing, "wb") as fh:
        fh.truncate(64 * 1024 * 1024)
    dev = subprocess.run(["losetup", "-f", "--show", str(backing)], check=True, capture_output=True, text=True,
                         env=SBIN_ENV).stdout.strip()
    try:
        yield Path(dev)
    finally:
        subprocess.run(["losetup", "-d", dev], check=False, env=SBIN_ENV)


def make_content(dev: Path, kind: str, label: str = ""):
    """Put a filesystem or a partition table on a device (kind 'blank' leaves it empty)."""
    if kind == "ext4":
        cmd = ["mkfs.ext4", "-q", "-F"] + (["-L", label] if label else []) + [str(dev)]
    elif kind == "vfat":
        cmd = ["mkfs.vfat"] + (["-n", label] if label else []) + [str(dev)]
    elif kind == "dos-table":
        cmd = ["sfdisk", "-q", "--no-reread", str(dev)]
    else:
        return dev
    subprocess.run(cmd, check=True, capture_output=True, input=b"label: dos\nstart=2048, type=83\n"
                   if kind == "dos-table" else None, env=SBIN_ENV)
    return dev


def digest(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


def blkid(dev: Path) -> dict:
    out = subprocess.run(["blkid", "-p", "-o", "export", str(dev)], capture_output=True, text=True,
                         env=SBIN_ENV).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


CHECK_PLAY = """
- name: Data disk check
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Check
      ansible.builtin.include_role:
        name: stratdata.pi_cluster.storage_prereqs
        tasks_from: data_disk_check
    - name: Show the decision
      ansible.builtin.debug:
        msg: "ACTION={{ storage_prereqs_data_disk_action }}"
"""

FORMAT_PLAY = CHECK_PLAY + """\
    - name: Format (no mount in the test; mounting writes /etc/fstab)
      ansible.builtin.include_role:
        name: stratdata.pi_cluster.storage_prereqs
        tasks_from: data_disk
      vars:
        storage_prereqs_mount_data_disk: false
"""


@pytest.mark.parametrize(
    "kind,label,found",
    [("vfat", "", "vfat"), ("ext4", "data", "ext4"), ("ext4", "", "ext4"), ("dos-table", "", "PTTYPE=dos"),
     ("vfat", "LONGHORN", "vfat")],
)
def test_foreign_data_disk_is_never_formatted(tmp_path, loop_device, kind, label, found):
    disk = make_content(loop_device, kind, label)
    before = digest(disk)
    inventory = write_inventory(tmp_path)
    res = play(inventory, write_playbook(tmp_path, FORMAT_PLAY), "storage_prereqs_data_disk=%s" % disk)
    assert_failed_unchanged(res, "so it is NEVER formatted")
    assert "already holds %s" % found in res.stdout
    assert "Format the empty data disk" not in res.stdout
    assert digest(disk) == before


def test_foreign_disk_stops_the_whole_role_first(tmp_path, loop_device):
    """The full role: the disk check is the first thing; packages are never reached (--check as safety net)."""
    disk = make_content(loop_device, "vfat")
    inventory = write_inventory(tmp_path)
    playbook = write_playbook(tmp_path, ROLE_PLAY.format(role="storage_prereqs"))
    res = play(inventory, playbook, "storage_prereqs_data_disk=%s" % disk, check=True)
    assert_failed_unchanged(res, "so it is NEVER formatted")
    assert "Install the Longhorn prerequisites" not in res.stdout


def test_missing_data_disk_is_refused(tmp_path):
    inventory = write_inventory(tmp_path)
    playbook = write_playbook(tmp_path, CHECK_PLAY)
    res = play(inventory, playbook, "storage_prereqs_data_disk=%s" % (tmp_path / "nope"))
    assert_failed_unchanged(res, "%s on localhost does not exist" % (tmp_path / "nope"))


def test_regular_file_is_refused_by_name(tmp_path):
    """/etc/hostname (a regular file that blkid finds nothing in) is refused, named, and left as it was."""
    before = digest(Path("/etc/hostname"))
    inventory = write_inventory(tmp_path)
    res = play(inventory, write_playbook(tmp_path, FORMAT_PLAY), "storage_prereqs_data_disk=/etc/hostname")
    assert_failed_unchanged(res, "storage_prereqs_data_disk /etc/hostname on localhost is not a block device")
    assert "(a regular file)" in res.stdout
    assert "Probe the data disk" not in res.stdout and "Format the empty data disk" not in res.stdout
    assert digest(Path("/etc/hostname")) == before


@pytest.mark.parametrize("kind", ["empty file", "directory"])
def test_other_non_block_paths_are_refused(tmp_path, kind):
    """An empty image file (blkid: nothing found, so "empty") and a directory are refused, not formatted."""
    target = tmp_path / "data-disk"
    if kind == "directory":
        target.mkdir()
    else:
        with open(target, "wb") as fh:
            fh.truncate(64 * 1024 * 1024)
    inventory = write_inventory(tmp_path)
    res = play(inventory, write_playbook(tmp_path, FORMAT_PLAY), "storage_prereqs_data_disk=%s" % target)
    assert_failed_unchanged(res, "%s on localhost is not a block device" % target)
    assert "(a %s)" % ("directory" if kind == "directory" else "regular file") in res.stdout
    if kind == "empty file":
        assert blkid(target) == {} and target.stat().st_size == 64 * 1024 * 1024


def test_symlink_to_a_block_device_is_followed(tmp_path, loop_device):
    """/dev/disk/by-id/... names are symlinks: the check looks at the device they point to."""
    link = tmp_path / "by-id-data-disk"
    link.symlink_to(loop_device)
    inventory = write_inventory(tmp_path)
    res = play(inventory, write_playbook(tmp_path, CHECK_PLAY), "storage_prereqs_data_disk=%s" % link)
    assert res.returncode == 0 and "ACTION=format" in res.stdout, res.stdout[-3000:]


def test_blank_disk_is_formatted_once_then_only_mounted(tmp_path, loop_device):
    disk = loop_device
    inventory = write_inventory(tmp_path)
    check = write_playbook(tmp_path, CHECK_PLAY)
    res = play(inventory, check, "storage_prereqs_data_disk=%s" % disk)
    assert res.returncode == 0 and "ACTION=format" in res.stdout, res.stdout[-3000:]
    assert blkid(disk) == {}  # the check alone changes nothing

    fmt = write_playbook(tmp_path, FORMAT_PLAY)
    dry = play(inventory, fmt, "storage_prereqs_data_disk=%s" % disk, check=True)
    assert dry.returncode == 0 and recap(dry.stdout)["changed"] == 1, dry.stdout[-3000:]
    assert blkid(disk) == {}  # check mode reports the format but does not run it

    first = play(inventory, fmt, "storage_prereqs_data_disk=%s" % disk)
    assert first.returncode == 0, first.stdout[-3000:]
    assert recap(first.stdout)["changed"] == 1
    probe = blkid(disk)
    assert probe["TYPE"] == "ext4" and probe["LABEL"] == "longhorn", probe
    formatted = digest(disk)

    for check_mode in (False, True):
        again = play(inventory, fmt, "storage_prereqs_data_disk=%s" % disk, check=check_mode)
        assert again.returncode == 0, again.stdout[-3000:]
        assert "ACTION=mount" in again.stdout
        assert recap(again.stdout)["changed"] == 0
    assert digest(disk) == formatted  # never formatted a second time


def test_reset_refuses_without_confirmation(tmp_path):
    """playbooks/reset.yml: no answer (no terminal) and no -e confirm_reset=yes -> stops on the control machine."""
    inventory = write_inventory(tmp_path)
    res = subprocess.run(
        ["ansible-playbook", "-i", str(inventory), "playbooks/reset.yml"],
        cwd=str(REPO), env=ansible_env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, timeout=300,
    )
    assert res.returncode != 0
    assert "Reset not confirmed" in res.stdout
    # the confirmation is the node play's first step: no task of the k3s roles ran
    for task in ("Remove the k3s server", "Remove the k3s agent", "Stop every k3s process", "Stop and disable k3s"):
        assert "TASK [%s" % task not in res.stdout and ": %s]" % task not in res.stdout, task
