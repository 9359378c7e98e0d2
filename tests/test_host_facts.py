"""pi_host_facts: the one-call host facts of the host layers (real module run on this machine + parsers)."""

import json
import sys

from conftest import REPO, run_ansible

sys.path.insert(0, str(REPO / "collections"))

from ansible_collections.stratdata.pi_cluster.plugins.modules import pi_host_facts  # noqa: E402

TRIXIE_OS_RELEASE = """PRETTY_NAME="Debian GNU/Linux 13 (trixie)"
NAME="Debian GNU/Linux"
VERSION_ID="13"
VERSION="13 (trixie)"
VERSION_CODENAME=trixie
ID=debian
"""

PROC_SWAPS_ZRAM = """Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority
/dev/zram0                              partition\t2097148\t\t0\t\t100
/var/swap                               file\t\t524284\t\t0\t\t-2
"""


def test_os_release_of_trixie():
    assert pi_host_facts.os_release(TRIXIE_OS_RELEASE) == {"id": "debian", "version_id": "13", "codename": "trixie"}


def test_active_swap_lists_zram_and_the_swap_file():
    assert pi_host_facts.active_swap(PROC_SWAPS_ZRAM) == ["/dev/zram0", "/var/swap"]
    assert pi_host_facts.active_swap("Filename\tType\tSize\tUsed\tPriority\n") == []


def test_module_reads_this_machine_in_one_call(tmp_path):
    cmdline = tmp_path / "cmdline.txt"
    cmdline.write_text("console=tty1 root=PARTUUID=1234abcd-02 rootwait cgroup_enable=memory\n")
    args = json.dumps({"cmdline_paths": [str(tmp_path / "missing.txt"), str(cmdline)],
                       "packages": ["git", "no-such-package-pi-cluster"]})
    result = run_ansible(["ansible", "localhost", "-i", "localhost,", "-c", "local", "-m",
                          "stratdata.pi_cluster.pi_host_facts", "-a", args,
                          "-e", "ansible_python_interpreter=%s" % sys.executable, "--check"])
    assert result.returncode == 0, result.stdout
    facts = json.loads(result.stdout.split("=>", 1)[1])["ansible_facts"]["pi_host"]
    assert facts["cmdline_path"] == str(cmdline)
    assert facts["cmdline_tokens"] == ["console=tty1", "root=PARTUUID=1234abcd-02", "rootwait", "cgroup_enable=memory"]
    assert facts["packages"]["git"]  # installed on every machine that runs these tests
    assert facts["packages"]["no-such-package-pi-cluster"] is None
    assert facts["os"]["id"] == "debian"
    assert isinstance(facts["in_container"], bool)
