"""Unit tests of the host-layer filters (plugins/filter/pi_host.py) and the cmdline editor
(plugins/module_utils/rpi_cmdline.py) used by base_os and rpi_image."""

import sys

import pytest
from conftest import REPO

sys.path.insert(0, str(REPO / "collections"))

from ansible_collections.stratdata.pi_cluster.plugins.filter import pi_host  # noqa: E402
from ansible_collections.stratdata.pi_cluster.plugins.module_utils.rpi_cmdline import ensure_tokens  # noqa: E402

BASE = "console=serial0,115200 console=tty1 root=PARTUUID=1234abcd-02 rootfstype=ext4 fsck.repair=yes rootwait\n"
FLAGS = ["cgroup_memory=1", "cgroup_enable=memory"]
KEYS = ["cgroup_memory", "cgroup_enable"]


def test_flags_appended_once_and_idempotent():
    once, changed = ensure_tokens(BASE, FLAGS, ["cgroup_memory"])
    assert changed
    assert once == BASE.rstrip("\n") + " cgroup_memory=1 cgroup_enable=memory\n"
    assert once.count("\n") == 1
    again, changed = ensure_tokens(once, FLAGS, ["cgroup_memory"])
    assert not changed and again == once


def test_unchanged_text_is_returned_byte_for_byte():
    odd = "console=tty1  root=/dev/mmcblk0p2   rootwait cgroup_memory=1 cgroup_enable=memory"  # no newline, 2 spaces
    assert ensure_tokens(odd, FLAGS, ["cgroup_memory"]) == (odd, False)


def test_duplicates_and_conflicting_values_are_cleaned():
    messy = "console=tty1 cgroup_enable=memory cgroup_memory=0 rootwait cgroup_enable=memory cgroup_enable=cpuset\n"
    out, changed = ensure_tokens(messy, FLAGS, ["cgroup_memory"])
    assert changed
    tokens = out.split()
    assert tokens.count("cgroup_enable=memory") == 1 and tokens.count("cgroup_memory=1") == 1
    assert "cgroup_memory=0" not in tokens
    assert "cgroup_enable=cpuset" in tokens  # another value of a multi-valued key is kept
    assert tokens.index("cgroup_enable=memory") == 1  # first occurrence keeps its place


def test_only_first_line_is_edited_never_a_second_line_added():
    text = BASE + "# a stray second line the firmware ignores\n"
    out, _ = ensure_tokens(text, FLAGS, KEYS[:1])
    first, rest = out.split("\n", 1)
    assert "cgroup_memory=1" in first
    assert rest == "# a stray second line the firmware ignores\n"


def test_remove_keys_for_firstrun():
    text = BASE.rstrip("\n") + " systemd.run=/boot/firstrun.sh systemd.run_success_action=reboot\n"
    out, changed = ensure_tokens(text, [], ["systemd.run", "systemd.run_success_action"])
    assert changed and out == BASE


def test_empty_file_gets_one_line():
    assert ensure_tokens("", FLAGS) == ("cgroup_memory=1 cgroup_enable=memory\n", True)


def test_whitespace_in_token_is_refused():
    with pytest.raises(ValueError):
        ensure_tokens(BASE, ["a b"])


def test_network_filters():
    assert pi_host.cidr_prefix("192.168.10.0/24") == 24
    assert pi_host.network_within("192.168.10.0/26", "192.168.10.0/24")
    assert pi_host.network_within("192.168.10.7", "192.168.10.0/24")
    assert not pi_host.network_within("192.168.0.0/16", "192.168.10.0/24")
    assert not pi_host.network_within("10.0.0.0/8", "192.168.10.0/24")
    assert not pi_host.network_within("*", "192.168.10.0/24")
    assert not pi_host.network_within("fd00::/64", "192.168.10.0/24")
    assert pi_host.is_ip("192.168.10.10") and pi_host.is_ip("fd00::1")
    assert not pi_host.is_ip("pi-master") and not pi_host.is_ip("192.168.10.0/24")


def test_cmdline_filter_matches_module_util():
    assert pi_host.cmdline_ensure(BASE, FLAGS, ["cgroup_memory"]) == ensure_tokens(BASE, FLAGS, ["cgroup_memory"])[0]
