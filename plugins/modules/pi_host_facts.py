#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: pi-cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Everything the host layers decide on, read in one round trip."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: pi_host_facts
short_description: Read what the host layers decide on, in one call per host
description:
  - Returns, as the fact C(pi_host), what the host roles (base_os, storage_prereqs, nfs_server) need to decide
    whether to act - whether the node is a container, the Raspberry Pi model, the OS release, the kernel command
    line file and its tokens, active swap (and swap lines of C(/etc/fstab)), whether the running kernel has the memory
    cgroup controller, the installed version of a few packages,
    the state of a few files and whether a few systemd units are enabled - in one module run,
    instead of one round trip per question (a C(stat), a C(slurp), a C(command) and a full C(package_facts)).
  - Reads only; never changes the host.
version_added: "0.2.0"
author:
  - pi-cluster maintainers
options:
  cmdline_paths:
    description:
      - Candidate paths of C(cmdline.txt), first existing wins (bookworm and trixie use C(/boot/firmware)).
    type: list
    elements: path
    default: [/boot/firmware/cmdline.txt, /boot/cmdline.txt]
  packages:
    description:
      - Debian packages whose installed version is reported (C(None) when not installed).
    type: list
    elements: str
    default: []
  files:
    description:
      - Paths whose type, SHA-1 of the content, mode, owner, group and link target are reported in
        C(pi_host.files), so that a role renders its file on the control machine and skips the write when the
        host already holds it (filter C(stratdata.pi_cluster.file_differs)).
    type: list
    elements: path
    default: []
  checksum:
    description:
      - Whether the SHA-1 of each regular file in O(files) is computed. V(false) reports C(sha1) as C(None),
        for a large binary (the helm binary, about 50 MB) whose content the role checks another way, so that
        a no-op run does not read it whole.
    type: bool
    default: true
  kernel_modules:
    description:
      - Kernel modules reported in C(pi_host.kernel_modules) as loaded or built in (C(/sys/module/NAME) exists).
    type: list
    elements: str
    default: []
  units:
    description:
      - systemd units whose C(systemctl is-enabled) answer is reported in C(pi_host.units)
        (C(enabled), C(disabled), C(static), C(masked), ... or C(not-found)).
      - All units of O(units) and O(active_units) are read with one C(systemctl show) process. An alias
        answers with the state of the unit it names (C(systemctl is-enabled) would say C(alias)).
    type: list
    elements: str
    default: []
  active_units:
    description:
      - systemd units whose C(systemctl is-active) answer is reported in C(pi_host.units_active)
        (C(active), C(inactive), C(failed), ...; C(inactive) for a unit systemd does not know, as
        C(systemctl is-active) says; C(not-found) when systemctl does not answer).
    type: list
    elements: str
    default: []
  versions:
    description:
      - Executables asked for their version (C(PATH --version)), reported in C(pi_host.versions) as C(rc) and
        C(stdout_lines), the shape of a registered C(command) result; a missing or non-executable path answers
        C(rc=2) and no output without starting a process. For a role that would otherwise spend a round trip on
        a C(command) task (the k3s binary).
    type: list
    elements: path
    default: []
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
notes:
  - Container detection follows C(systemd-detect-virt --container) - C(/run/systemd/container),
    C(/run/.containerenv), C(/.dockerenv), PID 1's C(container=) environment - without starting a process.
"""

EXAMPLES = r"""
- name: Read the host once
  stratdata.pi_cluster.pi_host_facts:
    packages: [multipath-tools, open-iscsi]

- name: Act only on a Pi
  ansible.builtin.debug:
    msg: "{{ pi_host.model }} on {{ pi_host.os.codename }}"
  when: pi_host.model != 'unknown'
"""

RETURN = r"""
ansible_facts:
  description: The fact C(pi_host).
  returned: always
  type: complex
  contains:
    pi_host:
      description: What was read.
      type: dict
      returned: always
      sample:
        hostname: pi-master
        in_container: false
        container: ""
        model: Raspberry Pi 5 Model B Rev 1.0
        os: {id: debian, codename: trixie, version_id: "13"}
        cmdline_path: /boot/firmware/cmdline.txt
        cmdline: "console=serial0,115200 console=tty1 root=PARTUUID=8a438930-02 rootfstype=ext4 rootwait"
        cmdline_text: "console=serial0,115200 console=tty1 root=PARTUUID=8a438930-02 rootfstype=ext4 rootwait\\n"
        cmdline_tokens: [console=serial0,115200, console=tty1, root=PARTUUID=8a438930-02, rootfstype=ext4, rootwait]
        swap_active: []
        fstab_swap: []
        memory_cgroup: {source: /sys/fs/cgroup/cgroup.controllers, present: true}
        packages: {multipath-tools: null, open-iscsi: "2.1.8-1"}
        files:
          /etc/timezone: {exists: true, type: file, sha1: 2c3e0b4c3f2e5f6e1b0a8d5c4f0e9d8c7b6a5f4e, mode: "0644",
                          owner: root, group: root, link: null}
        units: {chrony: enabled}
        units_active: {chrony: active}
        kernel_modules: {overlay: true, br_netfilter: false}
        versions:
          /usr/local/bin/k3s: {rc: 0, stdout_lines: ["k3s version v1.33.5+k3s1 (a2ba1c1a)", "go version go1.24.6"]}
"""

import grp
import hashlib
import os
import pwd
import re
import socket
import stat

from ansible.module_utils.basic import AnsibleModule

# The same pattern as base_os's "Comment out swap entries in /etc/fstab".
FSTAB_SWAP = re.compile(r"^([^#\s]\S*\s+\S+\s+swap\s.*)$")
CONTAINER_FILES = ("/run/systemd/container", "/run/.containerenv", "/.dockerenv")


def read_text(path, default=None):
    """File content as text, or default when it cannot be read."""
    try:
        with open(path, "rb") as handle:
            return handle.read().decode("utf-8", errors="replace")
    except (IOError, OSError):
        return default


def container_kind():
    """'' on bare metal/VM, else the container manager's name (as systemd-detect-virt --container)."""
    text = read_text("/run/systemd/container")
    if text and text.strip():
        return text.strip()
    if os.path.exists("/run/.containerenv"):
        return "podman"
    if os.path.exists("/.dockerenv"):
        return "docker"
    environ = read_text("/proc/1/environ", "") or ""
    for item in environ.split("\0"):
        if item.startswith("container="):
            return item.split("=", 1)[1] or "container"
    return ""


def os_release(text):
    """ID, VERSION_ID and VERSION_CODENAME of /etc/os-release."""
    values = {}
    for line in (text or "").splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip().strip('"').strip("'")
    return {"id": values.get("ID", ""), "version_id": values.get("VERSION_ID", ""),
            "codename": values.get("VERSION_CODENAME", "")}


def active_swap(text):
    """Device/file names of /proc/swaps (its first line is a header)."""
    return [line.split()[0] for line in (text or "").splitlines()[1:] if line.strip()]


def fstab_swap(text):
    """Active (not commented) swap entries of /etc/fstab, as base_os comments them out."""
    return [line for line in (text or "").splitlines() if FSTAB_SWAP.match(line)]


def memory_cgroup(controllers_text, proc_cgroups_text):
    """Whether the running kernel has the memory controller, and the file that says so.

    cgroup v2 lists its controllers in /sys/fs/cgroup/cgroup.controllers; a cgroup v1 hierarchy has no such
    file, and /proc/cgroups marks an enabled controller with 1 in its fourth column.
    """
    if controllers_text is not None:
        return {"source": "/sys/fs/cgroup/cgroup.controllers", "present": "memory" in controllers_text.split()}
    present = any(len(fields) >= 4 and fields[0] == "memory" and fields[3] == "1"
                  for fields in (line.split() for line in (proc_cgroups_text or "").splitlines()))
    return {"source": "/proc/cgroups", "present": present}


def _name(lookup, ident):
    try:
        return lookup(ident)[0]
    except KeyError:
        return str(ident)


def file_state(path, checksum=True):
    """What a file task compares: type, SHA-1 of a regular file (unless checksum is False), mode, owner,
    group, link target."""
    try:
        info = os.lstat(path)
    except OSError:
        return {"exists": False, "type": None, "sha1": None, "mode": None, "owner": None, "group": None,
                "link": None}
    if stat.S_ISLNK(info.st_mode):
        kind = "link"
    elif stat.S_ISDIR(info.st_mode):
        kind = "directory"
    elif stat.S_ISREG(info.st_mode):
        kind = "file"
    else:
        kind = "other"
    digest = None
    if kind == "file" and checksum:
        sha1 = hashlib.sha1()
        try:
            with open(path, "rb") as handle:
                for block in iter(lambda: handle.read(65536), b""):
                    sha1.update(block)
            digest = sha1.hexdigest()
        except (IOError, OSError):
            digest = None
    return {
        "exists": True,
        "type": kind,
        "sha1": digest,
        "mode": "%04o" % stat.S_IMODE(info.st_mode),
        "owner": _name(pwd.getpwuid, info.st_uid),
        "group": _name(grp.getgrgid, info.st_gid),
        "link": os.readlink(path) if kind == "link" else None,
    }


def parse_unit_show(text, count):
    """[{property: value}] of `systemctl show` for `count` units, in the order asked; None when the answer does
    not have one block per unit (systemd not running, an old systemctl)."""
    blocks = (text or "").strip().split("\n\n")
    if len(blocks) != count:
        return None
    units = []
    for block in blocks:
        values = {}
        for line in block.splitlines():
            key, sep, value = line.partition("=")
            if sep:
                values[key] = value
        units.append(values)
    return units


def unit_file_state(values):
    """What `systemctl is-enabled` answers, from `systemctl show` properties: the unit file state, or
    not-found for a unit systemd does not know (an alias answers for the unit it names)."""
    if values.get("LoadState") == "not-found":
        return "not-found"
    return values.get("UnitFileState") or "not-found"


def unit_states(module, names, active_names):
    """({unit: is-enabled answer}, {unit: is-active answer}) from ONE `systemctl show` of every unit asked;
    'not-found' for a unit systemd does not know, or everywhere when systemctl has no answer."""
    enabled = dict((name, "not-found") for name in names)
    active = dict((name, "not-found") for name in active_names)
    asked = list(dict.fromkeys(list(names) + list(active_names)))
    systemctl = module.get_bin_path("systemctl") if asked else None
    if not systemctl:
        return enabled, active
    _rc, out, _err = module.run_command([systemctl, "show", "--property=Id,LoadState,UnitFileState,ActiveState",
                                         "--"] + asked)
    shown = parse_unit_show(out, len(asked))
    if shown is None:
        return enabled, active
    by_name = dict(zip(asked, shown))
    for name in names:
        enabled[name] = unit_file_state(by_name[name])
    for name in active_names:
        active[name] = by_name[name].get("ActiveState") or "not-found"
    return enabled, active


def binary_versions(module, paths):
    """{path: {rc, stdout_lines}} of `PATH --version`; rc 2 without a process when PATH is not an executable file."""
    versions = {}
    for path in paths:
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            versions[path] = {"rc": 2, "stdout_lines": []}
            continue
        rc, out, _err = module.run_command([path, "--version"])
        versions[path] = {"rc": rc, "stdout_lines": out.splitlines()}
    return versions


def package_versions(module, names):
    """{name: installed version or None} from one dpkg-query call."""
    versions = dict((name, None) for name in names)
    if not names:
        return versions
    dpkg = module.get_bin_path("dpkg-query")
    if not dpkg:
        return versions
    _rc, out, _err = module.run_command([dpkg, "-W", "-f=${Package}\t${Status}\t${Version}\n"] + list(names))
    for line in out.splitlines():
        parts = line.split("\t")
        if len(parts) == 3 and parts[0] in versions and parts[1].endswith(" installed"):
            versions[parts[0]] = parts[2]
    return versions


def gather(module):
    params = module.params
    kind = container_kind()
    model = (read_text("/proc/device-tree/model", "") or "").replace("\0", "").strip() or "unknown"
    cmdline_path = next((p for p in params["cmdline_paths"] if os.path.isfile(p)), "")
    cmdline_text = read_text(cmdline_path, "") if cmdline_path else ""
    cmdline = (cmdline_text.splitlines() or [""])[0].strip()
    units, units_active = unit_states(module, params["units"], params["active_units"])
    return {
        "hostname": socket.gethostname(),
        "in_container": bool(kind),
        "container": kind,
        "model": model,
        "os": os_release(read_text("/etc/os-release", "")),
        "cmdline_path": cmdline_path,
        "cmdline": cmdline,
        "cmdline_text": cmdline_text,
        "cmdline_tokens": cmdline.split(),
        "swap_active": active_swap(read_text("/proc/swaps", "")),
        "fstab_swap": fstab_swap(read_text("/etc/fstab", "")),
        "memory_cgroup": memory_cgroup(read_text("/sys/fs/cgroup/cgroup.controllers"), read_text("/proc/cgroups")),
        "packages": package_versions(module, params["packages"]),
        "files": dict((path, file_state(path, params["checksum"])) for path in params["files"]),
        "units": units,
        "units_active": units_active,
        "kernel_modules": dict((name, os.path.isdir("/sys/module/" + name.replace("-", "_")))
                               for name in params["kernel_modules"]),
        "versions": binary_versions(module, params["versions"]),
    }


def argument_spec():
    return dict(
        cmdline_paths=dict(type="list", elements="path",
                           default=["/boot/firmware/cmdline.txt", "/boot/cmdline.txt"]),
        packages=dict(type="list", elements="str", default=[]),
        files=dict(type="list", elements="path", default=[]),
        checksum=dict(type="bool", default=True),
        units=dict(type="list", elements="str", default=[]),
        active_units=dict(type="list", elements="str", default=[]),
        kernel_modules=dict(type="list", elements="str", default=[]),
        versions=dict(type="list", elements="path", default=[]),
    )


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    module.exit_json(changed=False, ansible_facts={"pi_host": gather(module)})


if __name__ == "__main__":
    main()
