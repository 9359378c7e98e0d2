"""Unit tests of the podman lab's tooling (no containers, no network): apt mirror discovery,
the generated lab inventory, the baked package list and the PLAY RECAP parser."""

from __future__ import annotations

import importlib.util
import ipaddress
import json
import os
import shutil
import tempfile
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import REPO



def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


labinv = _load("labinv", REPO / "lab" / "labinv.py")
recap = _load("recap", REPO / "tests" / "lab" / "recap.py")

SOURCES_DEB822 = """\
Types: deb
# http://snapshot.example/archive/debian/20250520T000000Z
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
"""


@pytest.fixture
def apt_dir(tmp_path, monkeypatch):
    (tmp_path / "sources.list.d").mkdir()
    monkeypatch.setattr(labinv, "APT_DIR", tmp_path)
    return tmp_path


def test_mirror_from_deb822_sources(apt_dir):
    (apt_dir / "sources.list.d" / "debian.sources").write_text(SOURCES_DEB822)
    (apt_dir / "sources.list.d" / "other.sources.disabled-by-farm").write_text(
        "Types: deb\nURIs: http://wrong.example/debian\nSuites: bookworm\nComponents: main\n"
    )
    assert labinv.mirror_for("bookworm") == "http://mirror.example/debian"
    assert labinv.mirror_for("bookworm-security") == "http://mirror.example/debian-security"
    text = labinv.sources_for("bookworm")
    assert "Suites: bookworm bookworm-updates" in text
    assert "URIs: http://mirror.example/debian-security" in text
    assert "wrong.example" not in text


def test_mirror_from_one_line_sources_list(apt_dir):
    (apt_dir / "sources.list").write_text(
        "# comment\ndeb-src http://src.example/debian bookworm main\n"
        "deb [arch=amd64 signed-by=/k.gpg] http://one.example/debian bookworm main contrib\n"
    )
    assert labinv.mirror_for("bookworm") == "http://one.example/debian"


def test_disabled_entry_and_missing_suite(apt_dir):
    (apt_dir / "sources.list.d" / "debian.sources").write_text(
        "Enabled: no\nTypes: deb\nURIs: http://off.example/debian\nSuites: bookworm\nComponents: main\n"
    )
    with pytest.raises(SystemExit, match="no enabled apt source"):
        labinv.mirror_for("bookworm")


@pytest.fixture
def real_inventory(tmp_path):
    inv = tmp_path / "inventory"
    (inv / "host_vars").mkdir(parents=True)
    real_src = REPO / "inventory" / "hosts.yml"
    if real_src.is_file():
        (inv / "hosts.yml").write_text(real_src.read_text())
    else:
        (inv / "hosts.yml").write_text(yaml.safe_dump(labinv.FALLBACK_INVENTORY, sort_keys=False))
    for i, name in enumerate(["pi-master", *(f"pi-worker-0{n}" for n in range(2, 8))]):
        (inv / "host_vars" / f"{name}.yml").write_text(f"ansible_host: 192.168.10.{10 + i}\nnode_note: n{i}\n")
    return inv / "hosts.yml"


def _write(real_inventory, tmp_path, *extra):
    out = tmp_path / "lab" / "hosts.yml"
    addresses = labinv.lab_addresses(str(real_inventory), "10.89.210.0/24")
    args = [
        sys.executable,
        str(REPO / "lab" / "labinv.py"),
        "write",
        str(real_inventory),
        str(out),
        "--key",
        "/k/id_ed25519",
        "--network",
        "pi-cluster-lab",
        "--subnet",
        "10.89.210.0/24",
        "--gateway",
        "10.89.210.1",
        *extra,
    ]
    for name, ip in addresses.items():
        if "--partial" in extra and name not in ("pi-master", "pi-worker-02"):
            continue
        args += ["--address", f"{name}={ip}"]
    subprocess.run(args, check=True)
    return yaml.safe_load(out.read_text())


def test_lab_addresses_keep_the_real_host_part(real_inventory):
    addresses = labinv.lab_addresses(str(real_inventory), "10.89.210.0/24")
    assert addresses["pi-master"] == "10.89.210.10"
    assert addresses["pi-worker-07"] == "10.89.210.16"
    assert len(set(addresses.values())) == 7


def test_lab_addresses_fallback_without_real_address(tmp_path):
    src = tmp_path / "hosts.yml"
    src.write_text(yaml.safe_dump(labinv.FALLBACK_INVENTORY, sort_keys=False))
    addresses = labinv.lab_addresses(str(src), "10.0.5.0/24")
    assert addresses["pi-master"] == "10.0.5.10"
    assert len(set(addresses.values())) == 7


def test_generated_inventory_has_the_real_groups(real_inventory, tmp_path):
    lab = _write(real_inventory, tmp_path)
    real = yaml.safe_load(real_inventory.read_text())

    def groups(node, acc):
        for name, child in (node.get("children") or {}).items():
            acc[name] = sorted((child or {}).get("hosts") or {})
            groups(child or {}, acc)
        return acc

    assert groups(lab["all"], {}) == groups(real["all"], {})
    assert lab["all"]["vars"]["lab_network_subnet"] == "10.89.210.0/24"
    assert lab["all"]["vars"]["lab_network_gateway"] == "10.89.210.1"
    master = lab["all"]["children"]["k3s_cluster"]["children"]["k3s_server"]["hosts"]["pi-master"]
    assert master["ansible_host"] == "10.89.210.10"
    assert "ansible_user" not in master  # the real group_vars give it (pi_cluster_admin_user)
    assert master["ansible_ssh_private_key_file"] == "/k/id_ed25519"
    assert "StrictHostKeyChecking=no" in master["ansible_ssh_common_args"]
    assert "UserKnownHostsFile=/dev/null" in master["ansible_ssh_common_args"]
    assert master["ansible_host_key_checking"] is False  # Mitogen's ssh ignores the -o above for this
    assert master["node_note"] == "n0"  # other host variables of the real inventory are kept


def test_generated_inventory_partial(real_inventory, tmp_path):
    lab = _write(real_inventory, tmp_path, "--partial")
    text = yaml.safe_dump(lab)
    assert "pi-worker-02" in text
    assert "pi-worker-05" not in text


def test_lab_group_vars_link_the_real_ones():
    lab_all = REPO / "inventory" / "lab" / "group_vars" / "all"
    for name in ("cluster.yml", "main.yml", "vault.yml"):
        link = lab_all / name
        assert link.is_symlink(), name
        assert link.resolve() == (REPO / "inventory" / "group_vars" / "all" / name).resolve()
    overrides = yaml.safe_load((lab_all / "zz_lab.yml").read_text())
    assert overrides["pi_cluster_lab"] is True
    # literal values (testinfra reads variables untemplated); lab/lab.sh creates the network from them
    subnet = ipaddress.ip_network(overrides["pi_cluster_subnet"])
    assert ipaddress.ip_address(overrides["pi_cluster_gateway"]) == subnet.network_address + 1
    assert labinv.lab_addresses(str(REPO / "inventory" / "hosts.yml"), str(subnet))


# Hand-written: the only variables the lab may set that the real inventory does not (or sets
# differently). Anything else would let the lab paper over a missing or wrong real variable.
LAB_ONLY_VARIABLES = {
    # per host: what physically differs (address; SSH key and options of the throwaway lab key)
    "ansible_host",
    "ansible_ssh_private_key_file",
    "ansible_ssh_common_args",
    "ansible_host_key_checking",
    # the podman network and the lab key's path (lab_* names no role reads)
    "lab_network",
    "lab_network_subnet",
    "lab_network_gateway",
    "lab_ssh_key",
    # inventory/lab/group_vars/all/zz_lab.yml: the lab switch, the lab network's addresses, the lab key
    "pi_cluster_lab",
    "pi_cluster_subnet",
    "pi_cluster_gateway",
    "pi_cluster_dns_servers",
    "pi_cluster_ssh_public_key",
}


def _inventory_list(inventory: Path) -> dict:
    out = subprocess.run(
        [
            str(Path(sys.executable).parent / "ansible-inventory"),
            "-i",
            str(inventory),
            "--list",
            "--vault-password-file",
            str(REPO / "lab" / "vault-password.txt"),
        ],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg")},
    )
    return json.loads(out.stdout)["_meta"]["hostvars"]


def test_lab_inventory_differs_from_the_real_one_only_in_what_physically_differs(tmp_path):
    """`ansible-inventory --list` of the real inventory and of the lab inventory that labinv writes:
    per host, every variable that is added, dropped or changed is in LAB_ONLY_VARIABLES."""
    real = tmp_path / "inventory"
    shutil.copytree(REPO / "inventory", real, symlinks=True, ignore=shutil.ignore_patterns("hosts.yml", ".*"))
    shutil.copy(REPO / "inventory" / "hosts.yml", real / "hosts.yml")
    assert labinv.LAB_HOST_VARS | labinv.LAB_GROUP_VARS <= LAB_ONLY_VARIABLES
    zz_lab = yaml.safe_load((real / "lab" / "group_vars" / "all" / "zz_lab.yml").read_text())
    assert set(zz_lab) <= LAB_ONLY_VARIABLES, set(zz_lab) - LAB_ONLY_VARIABLES
    addresses = labinv.lab_addresses(str(real / "hosts.yml"), "10.89.210.0/24")
    cmd = [
        sys.executable,
        str(REPO / "lab" / "labinv.py"),
        "write",
        str(real / "hosts.yml"),
        str(real / "lab" / "hosts.yml"),
    ]
    cmd += ["--key", "/k/id_ed25519", "--network", "pi-cluster-lab", "--subnet", "10.89.210.0/24"]
    cmd += ["--gateway", "10.89.210.1"]
    for name, ip in addresses.items():
        cmd += ["--address", f"{name}={ip}"]
    subprocess.run(cmd, check=True)
    real_vars = _inventory_list(real / "hosts.yml")
    lab_vars = _inventory_list(real / "lab" / "hosts.yml")
    assert set(real_vars) == set(lab_vars) == set(addresses)
    for host in sorted(real_vars):
        keys = set(real_vars[host]) | set(lab_vars[host])
        differ = {k for k in keys if real_vars[host].get(k, KeyError) != lab_vars[host].get(k, KeyError)}
        assert differ <= LAB_ONLY_VARIABLES, f"{host}: the lab sets {sorted(differ - LAB_ONLY_VARIABLES)}"
        # the first-login variables come from the real group_vars, identical in both
        admin = real_vars[host]["pi_cluster_admin_user"]
        assert lab_vars[host]["ansible_user"] == real_vars[host]["ansible_user"] == admin
        assert lab_vars[host]["ansible_host"] == addresses[host]


def test_real_inventory_logs_in_as_the_admin_user():
    """Templated as Ansible does at connection time: pi-worker-03 is reached as pi_cluster_admin_user."""
    out = subprocess.run(
        [
            str(Path(sys.executable).parent / "ansible"),
            "-i",
            str(REPO / "inventory" / "hosts.yml"),
            "pi-worker-03",
            "-m",
            "ansible.builtin.debug",
            "-a",
            "msg={{ ansible_user }}@{{ ansible_host }}:{{ ansible_python_interpreter }}",
            "--vault-password-file",
            str(REPO / "lab" / "vault-password.txt"),
        ],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg")},
    )
    assert '"msg": "pi@192.168.10.12:/usr/bin/python3"' in out.stdout, out.stdout


def _lab_packages() -> dict[str, set[str]]:
    """lab/packages.txt as {suite: packages} ("<package> [suite]" lines, no suite = both)."""
    out: dict[str, set[str]] = {"bookworm": set(), "trixie": set()}
    for line in (REPO / "lab" / "packages.txt").read_text().splitlines():
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        assert len(words) <= 2 and (len(words) == 1 or words[1] in out), line
        for suite in out if len(words) == 1 else [words[1]]:
            out[suite].add(words[0])
    return out


def _lite_manifest() -> dict[str, set[str]]:
    """lab/raspios-lite-manifest.txt as {suite: names} (Debian stand-ins count for both suites)."""
    out: dict[str, set[str]] = {"bookworm": set(), "trixie": set()}
    for line in (REPO / "lab" / "raspios-lite-manifest.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        where, _, names = line.partition(":")
        for suite in out if where in ("both", "stand-in") else [where]:
            out[suite] |= set(names.split())
    return out


def _role_packages() -> dict[str, list[str]]:
    found = {}
    for defaults in sorted(REPO.glob("roles/*/defaults/main.yml")):
        data = yaml.safe_load(defaults.read_text()) or {}
        for key, value in data.items():
            if key.endswith("_packages") and isinstance(value, list):
                found[key] = [p for p in value if isinstance(p, str) and "{{" not in p]
    return found


def test_lab_image_is_a_fresh_lite_image():
    """Every package of the lab image is one a fresh Raspberry Pi OS Lite of that release holds."""
    manifest = _lite_manifest()
    for suite, packages in _lab_packages().items():
        assert packages - manifest[suite] == set(), f"{suite}: not on a fresh Lite image"


def test_lab_image_holds_no_package_a_role_installs():
    """A role's package is in the image only when a fresh Lite image ships it anyway (curl, ssh...):
    chrony, open-iscsi, nfs-common, cryptsetup, iptables... are installed by the roles at converge."""
    manifest = _lite_manifest()
    lab = _lab_packages()
    role_packages = _role_packages()
    assert role_packages["base_os_packages"] and role_packages["storage_prereqs_packages"]
    for suite in lab:
        for key, packages in role_packages.items():
            baked = sorted(p for p in packages if p in lab[suite] and p not in manifest[suite])
            assert not baked, f"{suite}: {key} {baked} pre-installed in the lab image"
    # hand-written: what the roles must install themselves in the lab (none of it is on Lite)
    for pkg in ("chrony", "open-iscsi", "cryptsetup", "iptables", "nfs-kernel-server", "python3-kubernetes"):
        assert all(pkg not in packages for packages in lab.values()), pkg
    assert "nfs-common" not in lab["trixie"] | lab["bookworm"]


def test_lab_image_has_what_each_release_boots_with():
    lab = _lab_packages()
    base = {"python3", "openssh-server", "systemd", "systemd-sysv", "sudo", "systemd-timesyncd"}
    assert base <= lab["bookworm"] and base <= lab["trixie"]
    assert {"cloud-init", "systemd-zram-generator"} <= lab["trixie"] - lab["bookworm"]
    assert "dphys-swapfile" in lab["bookworm"] - lab["trixie"]


def test_package_list_per_suite_of_lab_sh():
    """lab/lab.sh's own parser reads the same lists."""
    for suite, packages in _lab_packages().items():
        out = subprocess.run(
            ["bash", "-c", f'source <(sed -n "/^package_list()/,/^}}/p" lab/lab.sh); LAB_DIR=lab package_list {suite}'],
            cwd=REPO,
            check=True,
            capture_output=True,
            text=True,
        )
        assert set(out.stdout.strip().split(",")) == packages


RECAP_LOG = """\
PLAY [x] ***

TASK [y] ***
ok: [a]

PLAY RECAP *********************************************************************
localhost                  : ok=4    changed=0    unreachable=0    failed=0    skipped=0    rescued=0    ignored=0
pi-master                  : ok=92   changed=0    unreachable=0    failed=0    skipped=50   rescued=0    ignored=0
pi-worker-05               : ok=1    changed=0    unreachable=1    failed=0    skipped=0    rescued=0    ignored=0


TASKS RECAP ****
"""


def test_recap_parser_and_checks():
    parsed = recap.parse_recap(RECAP_LOG)
    assert parsed["pi-master"]["ok"] == 92
    assert parsed["pi-worker-05"]["unreachable"] == 1
    hosts = {"pi-master", "pi-worker-05"}
    assert recap.check_fault(parsed, "pi-worker-05", hosts) == []
    assert recap.check_fault(parsed, "pi-master", hosts)  # pi-master was not the one that went away
    assert recap.check_rerun(parsed, "pi-worker-05", hosts)  # still unreachable: not a good re-run
    rerun = {"pi-master": dict(parsed["pi-master"], changed=1), "pi-worker-05": dict(parsed["pi-master"])}
    expected = ["pi-master reported changed=1 on the re-run (expected 0)"]
    assert recap.check_rerun(rerun, "pi-worker-05", hosts) == expected


def test_recap_parser_needs_a_recap():
    with pytest.raises(ValueError, match="no PLAY RECAP"):
        recap.parse_recap("nothing here")


def test_system_deps_names_missing_packages_when_not_root():
    """scripts/system-deps.sh (make system-deps, called by make test / make lab) as a non-root user:
    nothing installed, a clear error naming exactly the missing packages."""
    with tempfile.TemporaryDirectory(prefix="pi-cluster-sysdeps-") as tmp:  # readable by the other user
        _system_deps_as_other_user(Path(tmp))


def _system_deps_as_other_user(tmp_path: Path) -> None:
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    shutil.copy(REPO / "scripts" / "system-deps.sh", scripts / "system-deps.sh")
    (scripts / "system-packages.txt").write_text("# comment\nbash\npi-cluster-no-such-package\n\ncoreutils\n")
    tmp_path.chmod(0o755)
    scripts.chmod(0o755)
    cmd = ["bash", str(scripts / "system-deps.sh")]
    if os.geteuid() == 0:
        cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *cmd]
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "missing Debian packages: pi-cluster-no-such-package\n" in res.stderr
    assert "run as root, or: sudo apt-get install pi-cluster-no-such-package" in res.stderr
    assert res.stdout == ""


def test_make_targets_install_system_packages_first():
    """make test / make lab (and every venv) depend on system-deps; .ci/run only calls make test."""
    # Under CI this test runs inside `make test`: a nested make prints "Entering directory" unless told not to.
    env = {k: v for k, v in os.environ.items() if k not in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS")}
    out = subprocess.run(
        ["make", "--no-print-directory", "-n", "-B", "test", "lab"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        env={**env, "VENV": "/nonexistent/venv"},
    ).stdout.splitlines()
    assert out[0] == "bash scripts/system-deps.sh", out[:3]
    ci = (REPO / ".ci" / "run").read_text()
    assert "make test" in ci and "apt-get" not in ci and "system-deps" not in ci
