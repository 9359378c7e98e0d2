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


FSTAB = """proc            /proc           proc    defaults          0       0
PARTUUID=1234abcd-01  /boot/firmware  vfat    defaults          0       2
/var/swap       none            swap    sw                0       0
# /swapfile     none            swap    sw                0       0
"""


def test_fstab_swap_lists_the_lines_base_os_comments_out():
    assert pi_host_facts.fstab_swap(FSTAB) == ["/var/swap       none            swap    sw                0       0"]
    assert pi_host_facts.fstab_swap("# /var/swap none swap sw 0 0  # swap disabled for k3s\n") == []


def test_file_differs_decides_like_the_template_module(tmp_path):
    """A real template task writes a file; pi_host_facts reads it back; file_differs says "skip" only then.

    This is the contract the host roles' `when: ... file_differs(...)` conditions rest on: the control
    machine's rendering (lookup template) hashes to what the template module wrote on the host.
    """
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "t.conf.j2").write_text(
        "# {{ ansible_managed }}\n{% for key, value in settings.items() %}\n{{ key }} = {{ value }}\n{% endfor %}\n")
    dest = tmp_path / "t.conf"
    playbook = tmp_path / "play.yml"
    playbook.write_text(f"""
- name: File_differs against the template module
  hosts: localhost
  gather_facts: false
  vars:
    settings: {{a: 1, b: two}}
    dest: {dest}
    rendered: "{{{{ lookup('template', 't.conf.j2') }}}}"
  tasks:
    - name: Read before
      stratdata.pi_cluster.pi_host_facts: {{files: ["{{{{ dest }}}}", "{tmp_path}/missing"]}}
    - name: Differs before
      ansible.builtin.assert:
        that:
          - pi_host.files | stratdata.pi_cluster.file_differs(dest, content=rendered, mode='0640')
          - pi_host.files | stratdata.pi_cluster.file_differs('{tmp_path}/missing', state='directory')
    - name: Write
      ansible.builtin.template: {{src: t.conf.j2, dest: "{{{{ dest }}}}", mode: "0640"}}
    - name: Read after
      stratdata.pi_cluster.pi_host_facts: {{files: ["{{{{ dest }}}}", "{tmp_path}"]}}
    - name: Same after, differs for another mode, content or owner
      ansible.builtin.assert:
        that:
          - not (pi_host.files | stratdata.pi_cluster.file_differs(dest, content=rendered, mode='0640'))
          - not (pi_host.files | stratdata.pi_cluster.file_differs('{tmp_path}', state='directory'))
          - pi_host.files | stratdata.pi_cluster.file_differs(dest, content=rendered, mode='0644')
          - pi_host.files | stratdata.pi_cluster.file_differs(dest, content='other', mode='0640')
          - pi_host.files | stratdata.pi_cluster.file_differs(dest, owner='no-such-owner-pi-cluster')
          - pi_host.files | stratdata.pi_cluster.file_differs(dest, state='link', src='/x')
""")
    result = run_ansible(["ansible-playbook", "-i", "localhost,", "-c", "local", str(playbook),
                          "-e", "ansible_python_interpreter=%s" % sys.executable])
    assert result.returncode == 0, result.stdout
    assert "failed=0" in result.stdout


def test_links_units_and_kernel_modules_in_one_call(tmp_path):
    link = tmp_path / "localtime"
    link.symlink_to("/usr/share/zoneinfo/Etc/UTC")
    big = tmp_path / "binary"
    big.write_bytes(b"\0" * 1024)
    args = json.dumps({"files": [str(link)], "units": ["no-such-unit-pi-cluster", "other-unit-pi-cluster"],
                       "active_units": ["no-such-unit-pi-cluster"],
                       "kernel_modules": ["no_such_module_pi_cluster"]})
    no_checksum = json.dumps({"files": [str(big)], "checksum": False})
    result = run_ansible(["ansible", "localhost", "-i", "localhost,", "-c", "local", "-m",
                          "stratdata.pi_cluster.pi_host_facts", "-a", args,
                          "-e", "ansible_python_interpreter=%s" % sys.executable])
    assert result.returncode == 0, result.stdout
    facts = json.loads(result.stdout.split("=>", 1)[1])["ansible_facts"]["pi_host"]
    assert facts["files"][str(link)]["type"] == "link"
    assert facts["files"][str(link)]["link"] == "/usr/share/zoneinfo/Etc/UTC"
    assert facts["units"]["no-such-unit-pi-cluster"] != "enabled"
    assert facts["units_active"]["no-such-unit-pi-cluster"] != "active"
    assert list(facts["units_active"]) == ["no-such-unit-pi-cluster"]  # is-active only where asked
    assert facts["kernel_modules"] == {"no_such_module_pi_cluster": False}
    assert facts["hostname"]
    result = run_ansible(["ansible", "localhost", "-i", "localhost,", "-c", "local", "-m",
                          "stratdata.pi_cluster.pi_host_facts", "-a", no_checksum,
                          "-e", "ansible_python_interpreter=%s" % sys.executable])
    assert result.returncode == 0, result.stdout
    state = json.loads(result.stdout.split("=>", 1)[1])["ansible_facts"]["pi_host"]["files"][str(big)]
    assert state["type"] == "file" and state["sha1"] is None and state["mode"]


def test_versions_answer_like_a_command_result(tmp_path):
    """k3s_binary decides on {rc, stdout_lines} of `k3s --version`; pi_host_facts answers in that shape."""
    fake = tmp_path / "k3s"
    fake.write_text('#!/bin/sh\necho "k3s version v1.33.5+k3s1 (a2ba1c1a)"\necho "go version go1.24.6"\n')
    fake.chmod(0o755)
    not_executable = tmp_path / "k3s-not-executable"
    not_executable.write_text("#!/bin/sh\necho never\n")
    args = json.dumps({"versions": [str(fake), str(tmp_path / "missing"), str(not_executable)]})
    result = run_ansible(["ansible", "localhost", "-i", "localhost,", "-c", "local", "-m",
                          "stratdata.pi_cluster.pi_host_facts", "-a", args, "--check",
                          "-e", "ansible_python_interpreter=%s" % sys.executable])
    assert result.returncode == 0, result.stdout
    versions = json.loads(result.stdout.split("=>", 1)[1])["ansible_facts"]["pi_host"]["versions"]
    assert versions[str(fake)] == {"rc": 0, "stdout_lines": ["k3s version v1.33.5+k3s1 (a2ba1c1a)",
                                                             "go version go1.24.6"]}
    assert versions[str(tmp_path / "missing")] == {"rc": 2, "stdout_lines": []}
    assert versions[str(not_executable)] == {"rc": 2, "stdout_lines": []}


def test_every_unit_a_role_reads_is_one_its_fact_call_asks_for():
    """pi_host.units[X] / pi_host.units_active[X] in a role needs X in that role's units / active_units.

    The lab cannot catch a miss: in containers the chrony condition short-circuits on in_container first,
    so a KeyError would first appear on a real Pi.
    """
    import re

    import yaml

    checked = 0
    for role in sorted((REPO / "roles").iterdir()):
        asked = {"units": set(), "units_active": set()}
        text = ""
        for path in sorted(role.glob("tasks/*.yml")) + sorted(role.glob("vars/*.yml")):
            text += path.read_text()
            if path.parent.name != "tasks":
                continue
            for task in yaml.safe_load(path.read_text()) or []:
                call = (task or {}).get("stratdata.pi_cluster.pi_host_facts")
                if isinstance(call, dict):
                    asked["units"].update(call.get("units") or [])
                    asked["units_active"].update(call.get("active_units") or [])
        for key in asked:
            for unit in re.findall(r"pi_host\.%s\[['\"]([^'\"]+)['\"]\]" % key, text):
                checked += 1
                assert unit in asked[key], "%s reads pi_host.%s[%r] but never asks for it" % (role.name, key, unit)
    assert checked >= 4


PROC_CGROUPS_V1 = """#subsys_name\thierarchy\tnum_cgroups\tenabled
cpuset\t6\t1\t1
cpu\t3\t64\t1
memory\t0\t98\t0
pids\t9\t70\t1
"""


def test_memory_cgroup_from_either_hierarchy():
    """cgroup v2 (cgroup.controllers) wins; a v1 kernel answers in /proc/cgroups' enabled column."""
    v2 = "/sys/fs/cgroup/cgroup.controllers"
    with_memory = pi_host_facts.memory_cgroup("cpuset cpu io memory pids\n", PROC_CGROUPS_V1)
    assert with_memory == {"source": v2, "present": True}
    # a Pi kernel booted without cgroup_enable=memory: v2 lists no memory controller
    assert pi_host_facts.memory_cgroup("cpuset cpu io pids\n", None) == {"source": v2, "present": False}
    assert pi_host_facts.memory_cgroup(None, PROC_CGROUPS_V1) == {"source": "/proc/cgroups", "present": False}
    enabled = PROC_CGROUPS_V1.replace("memory\t0\t98\t0", "memory\t4\t98\t1")
    assert pi_host_facts.memory_cgroup(None, enabled) == {"source": "/proc/cgroups", "present": True}
    assert pi_host_facts.memory_cgroup(None, None) == {"source": "/proc/cgroups", "present": False}
