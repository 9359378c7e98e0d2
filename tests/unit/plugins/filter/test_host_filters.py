"""Unit tests of the host-layer filters (plugins/filter/pi_host.py) and the cmdline editor
(plugins/module_utils/rpi_cmdline.py) used by base_os and rpi_image."""


import pytest
from ansible.errors import AnsibleFilterError
from hypothesis import given, settings
from hypothesis import strategies as st


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


@pytest.mark.parametrize(
    "text,ensure,remove,expected",
    [
        # base_os's call: the flags, and their keys so that a conflicting value is replaced (hand-written results)
        (BASE, FLAGS, KEYS, BASE.rstrip("\n") + " cgroup_memory=1 cgroup_enable=memory\n"),
        ("console=tty1 cgroup_memory=0 root=/dev/mmcblk0p2 rootwait\n", FLAGS, KEYS,
         "console=tty1 root=/dev/mmcblk0p2 rootwait cgroup_memory=1 cgroup_enable=memory\n"),  # conflict dropped
        ("console=tty1 rootwait cgroup_memory=1 cgroup_enable=memory\n", FLAGS, KEYS,
         "console=tty1 rootwait cgroup_memory=1 cgroup_enable=memory\n"),
        # rpi_image's call on a bookworm image: firstrun removed, the flags added
        ("console=tty1 root=PARTUUID=1-02 rootwait systemd.run=/boot/firstrun.sh systemd.run_success_action=reboot\n",
         FLAGS, ["systemd.run", "systemd.run_success_action"],
         "console=tty1 root=PARTUUID=1-02 rootwait cgroup_memory=1 cgroup_enable=memory\n"),
        ("", ["quiet"], None, "quiet\n"),
    ],
)
def test_cmdline_filter_gives_the_expected_line(text, ensure, remove, expected):
    assert pi_host.cmdline_ensure(text, ensure, remove) == expected


def test_cmdline_filter_reports_bad_tokens_as_a_filter_error():
    from ansible.errors import AnsibleFilterError

    with pytest.raises(AnsibleFilterError, match="a b"):
        pi_host.cmdline_ensure(BASE, ["a b"])


TOKEN = st.from_regex(r"[a-z][a-z0-9_.]{0,8}(=[a-z0-9,]{1,6})?", fullmatch=True)


@settings(max_examples=150, deadline=None)
@given(existing=st.lists(TOKEN, max_size=8), ensure=st.lists(TOKEN, max_size=4), second_line=st.booleans())
def test_cmdline_filter_properties(existing, ensure, second_line):
    """Whatever the line holds: every ensured token is in the first line exactly once, no other key=value of an
    ensured key survives, the rest of the file is untouched, and a second application changes nothing."""
    rest = "# comment\n" if second_line else ""
    text = " ".join(existing) + "\n" + rest
    keys = sorted({token.split("=", 1)[0] for token in ensure})
    out = pi_host.cmdline_ensure(text, ensure, keys)
    first, _, tail = out.partition("\n")
    tokens = first.split()
    for token in ensure:
        assert tokens.count(token) == 1, (text, ensure, out)
    for token in tokens:
        key = token.split("=", 1)[0]
        if key in keys:
            assert token in ensure, (text, ensure, out)
    kept = [t for t in existing if t.split("=", 1)[0] not in keys]
    assert [t for t in tokens if t.split("=", 1)[0] not in keys] == kept
    assert tail == rest
    assert pi_host.cmdline_ensure(out, ensure, keys) == out


FILES = {
    "/etc/timezone": {"exists": True, "type": "file",
                      "sha1": "4e7ac3f5a1c7e6b0e0c8a2a0d1b6e0a8b8d1b2c3",  # pragma: allowlist secret
                      "mode": "0644", "owner": "root", "group": "root", "link": None},
    "/etc/localtime": {"exists": True, "type": "link", "sha1": None, "mode": "0777", "owner": "root",
                       "group": "root", "link": "/usr/share/zoneinfo/Europe/Madrid"},
    "/etc/gone": {"exists": False, "type": None, "sha1": None, "mode": None, "owner": None, "group": None,
                  "link": None},
}


def test_file_differs_only_when_the_task_would_change_something():
    import hashlib

    files = dict(FILES)
    files["/etc/timezone"] = dict(files["/etc/timezone"], sha1=hashlib.sha1(b"Europe/Madrid\n").hexdigest())
    differs = pi_host.file_differs
    assert not differs(files, "/etc/timezone", content="Europe/Madrid\n", mode="0644", owner="root", group="root")
    assert not differs(files, "/etc/timezone", content="Europe/Madrid\n", mode="644")
    assert not differs(files, "/etc/timezone", content="Europe/Madrid\n", mode=0o644)
    assert differs(files, "/etc/timezone", content="Europe/Paris\n")
    assert differs(files, "/etc/timezone", mode="0600")
    assert differs(files, "/etc/timezone", group="adm")
    assert not differs(files, "/etc/localtime", state="link", src="/usr/share/zoneinfo/Europe/Madrid")
    assert differs(files, "/etc/localtime", state="link", src="/usr/share/zoneinfo/Etc/UTC")
    assert differs(files, "/etc/localtime", content="x")  # a link where a file is wanted
    assert differs(files, "/etc/gone", state="directory")
    assert differs(files, "/etc/never-read", content="")  # not read: the real task decides


def test_file_differs_refuses_a_mode_that_is_not_octal():
    with pytest.raises(AnsibleFilterError, match="not octal"):
        pi_host.file_differs(FILES, "/etc/timezone", mode="rw-r--r--")


def test_packages_missing_and_present():
    versions = {"chrony": "4.3-2", "rpi-swap": None, "curl": "7.88"}
    assert pi_host.packages_missing(versions, ["chrony", "curl", "rpi-swap", "unread"]) == ["rpi-swap", "unread"]
    assert pi_host.packages_present(versions, ["rpi-swap", "chrony"]) == ["chrony"]
    assert pi_host.packages_missing(None, ["chrony"]) == ["chrony"]
