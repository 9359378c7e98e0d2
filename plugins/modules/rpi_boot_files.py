#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: pi-cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Write first-boot files into the boot (FAT) partition of a Raspberry Pi OS image, unprivileged."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: rpi_boot_files
short_description: Customise the boot partition of a Raspberry Pi OS image or SD card
description:
  - Writes whole files (for example C(user-data), C(firstrun.sh), C(userconf.txt)) into the
    FAT boot partition of a Raspberry Pi OS disk image, or into a mounted boot directory.
  - Edits the single line of C(cmdline.txt) so that given kernel arguments appear exactly once;
    no second line is ever added.
  - Disk images are edited with mtools (C(mtype), C(mcopy), C(mdel), C(mdir)) at the byte offset
    of the partition read from the MBR, so no loop device, mount or root privilege is needed.
  - Detects the image style, C(trixie) when cloud-init files (C(user-data), C(meta-data),
    C(network-config)) exist on the boot partition or C(issue.txt) names trixie, otherwise C(bookworm).
  - Can first create the image as a (sparse) copy of a base image.
version_added: "1.0.0"
author:
  - pi-cluster maintainers
options:
  image:
    description:
      - Disk image file (C(.img)) whose boot partition is edited. Mutually exclusive with O(boot_dir).
    type: path
  boot_dir:
    description:
      - A mounted boot partition (for example C(/media/user/bootfs)). Mutually exclusive with O(image).
    type: path
  source_image:
    description:
      - Base image copied to O(image) when O(image) does not exist yet (sparse, atomic). An existing
        O(image) is never overwritten.
    type: path
  partition:
    description:
      - Number (1-4) of the MBR partition that holds the boot file system.
    type: int
    default: 1
  offset:
    description:
      - Byte offset of the boot file system inside O(image). Default is read from the partition table.
    type: int
  files:
    description:
      - Files to write into the root of the boot partition, name => full content.
    type: dict
    default: {}
  remove_files:
    description:
      - Files to delete from the root of the boot partition when present.
    type: list
    elements: str
    default: []
  cmdline_ensure:
    description:
      - Kernel arguments that must appear exactly once in the first line of C(cmdline.txt).
    type: list
    elements: str
    default: []
  cmdline_remove_keys:
    description:
      - Keys of kernel arguments to drop from C(cmdline.txt) (for example C(systemd.run)), except
        arguments listed in O(cmdline_ensure).
    type: list
    elements: str
    default: []
  detect_only:
    description:
      - Only read the boot partition and return RV(style) and RV(cmdline); change nothing.
    type: bool
    default: false
requirements:
  - mtools (C(mtype), C(mcopy), C(mdel), C(mdir)) on the host that runs the module, for O(image).
notes:
  - Supports check mode and diff mode.
  - File names are compared case-insensitively (FAT); new files are created with the given name.
extends_documentation_fragment:
  - stratdata.pi_cluster.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
"""

EXAMPLES = r"""
- name: Customise the image of pi-master (trixie, cloud-init)
  stratdata.pi_cluster.rpi_boot_files:
    source_image: /srv/images/raspios-trixie-arm64-lite.img
    image: build/images/pi-master.img
    files:
      user-data: "{{ lookup('ansible.builtin.template', 'user-data.j2') }}"
      meta-data: "instance-id: pi-master\nlocal-hostname: pi-master\n"
    cmdline_ensure: [cgroup_memory=1, cgroup_enable=memory]
    cmdline_remove_keys: [cgroup_memory]

- name: Which style is this image?
  stratdata.pi_cluster.rpi_boot_files:
    image: build/images/pi-master.img
    detect_only: true
  register: boot

- name: Edit an SD card mounted on the control machine
  stratdata.pi_cluster.rpi_boot_files:
    boot_dir: /media/me/bootfs
    files:
      ssh: ""
    cmdline_ensure: [cgroup_memory=1, cgroup_enable=memory]
"""

RETURN = r"""
style:
  description: Style detected from the boot partition before any change.
  returned: always
  type: str
  sample: trixie
offset:
  description: Byte offset of the boot file system inside the image (0 for O(boot_dir)).
  returned: always
  type: int
  sample: 4194304
copied:
  description: Whether O(image) was created from O(source_image).
  returned: always
  type: bool
files_changed:
  description: Names of the files written, rewritten or removed (cmdline.txt included).
  returned: always
  type: list
  elements: str
  sample: [user-data, cmdline.txt]
cmdline:
  description: First line of cmdline.txt after the change (or as found, with O(detect_only)).
  returned: always
  type: str
  sample: console=serial0,115200 console=tty1 root=PARTUUID=1234-02 rootwait cgroup_memory=1 cgroup_enable=memory
boot_files:
  description: Names of the files in the root of the boot partition (before changes).
  returned: always
  type: list
  elements: str
"""

import os
import shutil
import struct
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_bytes, to_text
from ansible_collections.stratdata.pi_cluster.plugins.module_utils.rpi_cmdline import ensure_tokens

SECTOR = 512
FAT_TYPES = (0x01, 0x04, 0x06, 0x0B, 0x0C, 0x0E)
CLOUD_INIT_FILES = ("user-data", "meta-data", "network-config")
COPY_CHUNK = 4 * 1024 * 1024


def mbr_partition_offset(path, number):
    """Byte offset of MBR partition `number` (1-4) of image `path`; raises ValueError."""
    with open(path, "rb") as handle:
        mbr = handle.read(SECTOR)
    if len(mbr) < SECTOR or mbr[510:512] != b"\x55\xaa":
        raise ValueError("%s has no MBR partition table (boot signature missing)" % path)
    if not 1 <= number <= 4:
        raise ValueError("partition must be 1-4, got %d" % number)
    entry = mbr[446 + 16 * (number - 1): 446 + 16 * number]
    ptype = entry[4]
    start_lba = struct.unpack("<I", entry[8:12])[0]
    if ptype == 0xEE:
        raise ValueError("%s has a GPT partition table; pass offset explicitly" % path)
    if ptype == 0 or start_lba == 0:
        raise ValueError("%s: partition %d is empty" % (path, number))
    if ptype not in FAT_TYPES:
        raise ValueError("%s: partition %d has type 0x%02x, not a FAT partition" % (path, number, ptype))
    return start_lba * SECTOR


def sparse_copy(src, dest):
    """Copy src to dest keeping holes (all-zero chunks are skipped), via a temp file + rename."""
    directory = os.path.dirname(os.path.abspath(dest))
    fd, tmp = tempfile.mkstemp(prefix=".%s." % os.path.basename(dest), dir=directory)
    try:
        with os.fdopen(fd, "wb") as out, open(src, "rb") as inp:
            zero = bytes(COPY_CHUNK)
            size = 0
            while True:
                chunk = inp.read(COPY_CHUNK)
                if not chunk:
                    break
                size += len(chunk)
                if chunk == zero[: len(chunk)]:
                    out.seek(len(chunk), os.SEEK_CUR)
                else:
                    out.write(chunk)
            out.truncate(size)
        shutil.copymode(src, tmp)
        os.rename(tmp, dest)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


class BootDir(object):
    """Boot files in a mounted directory."""

    def __init__(self, module, path):
        self.module = module
        self.path = path
        if not os.path.isdir(path):
            module.fail_json(msg="boot_dir %s is not a directory" % path)

    def listdir(self):
        return sorted(n for n in os.listdir(self.path) if os.path.isfile(os.path.join(self.path, n)))

    def read(self, name):
        with open(os.path.join(self.path, name), "rb") as handle:
            return handle.read()

    def write(self, name, data):
        dest = os.path.join(self.path, name)
        fd, tmp = tempfile.mkstemp(prefix=".rpi_boot_files.", dir=self.path)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.rename(tmp, dest)

    def remove(self, name):
        os.unlink(os.path.join(self.path, name))


class FatImage(object):
    """Boot files inside a FAT partition of a disk image, through mtools."""

    def __init__(self, module, image, offset):
        self.module = module
        self.target = "%s@@%d" % (image, offset)
        for tool in ("mdir", "mtype", "mcopy", "mdel"):
            module.get_bin_path(tool, required=True)
        self.env = {"MTOOLS_SKIP_CHECK": "1", "MTOOLS_NO_VFAT": "0", "LC_ALL": "C"}

    def _run(self, args, binary=False):
        rc, out, err = self.module.run_command(
            args, environ_update=self.env, binary_data=binary, encoding=None if binary else "utf-8"
        )
        if rc != 0:
            self.module.fail_json(msg="%s failed (rc=%d): %s" % (args[0], rc, to_text(err).strip()), cmd=args)
        return out

    def listdir(self):
        out = to_text(self._run(["mdir", "-b", "-i", self.target, "::/"]))
        names = []
        for line in out.splitlines():
            line = line.strip()
            if not line.startswith("::/"):
                continue
            name = line[3:]
            if name and not name.endswith("/"):
                names.append(name)
        return sorted(names)

    def read(self, name):
        return to_bytes(self._run(["mtype", "-i", self.target, "::/" + name], binary=True))

    def write(self, name, data):
        fd, tmp = tempfile.mkstemp(prefix="rpi_boot_files.")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            self._run(["mcopy", "-o", "-D", "o", "-i", self.target, tmp, "::/" + name])
        finally:
            os.unlink(tmp)

    def remove(self, name):
        self._run(["mdel", "-i", self.target, "::/" + name])


def detect_style(fs, names):
    lower = dict((n.lower(), n) for n in names)
    if any(f in lower for f in CLOUD_INIT_FILES):
        return "trixie"
    if "issue.txt" in lower:
        issue = to_text(fs.read(lower["issue.txt"]), errors="replace").lower()
        if "trixie" in issue:
            return "trixie"
    return "bookworm"


def main():
    module = AnsibleModule(
        argument_spec=dict(
            image=dict(type="path"),
            boot_dir=dict(type="path"),
            source_image=dict(type="path"),
            partition=dict(type="int", default=1),
            offset=dict(type="int"),
            files=dict(type="dict", default={}),
            remove_files=dict(type="list", elements="str", default=[]),
            cmdline_ensure=dict(type="list", elements="str", default=[]),
            cmdline_remove_keys=dict(type="list", elements="str", default=[], no_log=False),
            detect_only=dict(type="bool", default=False),
        ),
        mutually_exclusive=[("image", "boot_dir")],
        required_one_of=[("image", "boot_dir")],
        supports_check_mode=True,
    )
    p = module.params
    result = dict(changed=False, copied=False, files_changed=[], offset=0, style="", cmdline="", boot_files=[])
    diff = dict(before="", after="", before_header="", after_header="")
    diff_before, diff_after = [], []

    if p["image"]:
        image = p["image"]
        read_from = image
        if not os.path.exists(image):
            if not p["source_image"]:
                module.fail_json(msg="image %s does not exist and no source_image was given" % image)
            if not os.path.isfile(p["source_image"]):
                module.fail_json(msg="source_image %s does not exist" % p["source_image"])
            if not p["detect_only"]:
                result["copied"] = True
                result["changed"] = True
                diff_before.append("# %s: absent" % image)
                diff_after.append("# %s: copy of %s" % (image, p["source_image"]))
                if not module.check_mode:
                    parent = os.path.dirname(os.path.abspath(image))
                    if not os.path.isdir(parent):
                        module.fail_json(msg="directory %s does not exist" % parent)
                    sparse_copy(p["source_image"], image)
            if module.check_mode or p["detect_only"]:
                read_from = p["source_image"]
        try:
            offset = p["offset"] if p["offset"] is not None else mbr_partition_offset(read_from, p["partition"])
        except (OSError, ValueError) as exc:
            module.fail_json(msg=str(exc))
        result["offset"] = offset
        fs = FatImage(module, read_from, offset)
    else:
        fs = BootDir(module, p["boot_dir"])

    names = fs.listdir()
    by_lower = dict((n.lower(), n) for n in names)
    result["boot_files"] = names
    result["style"] = detect_style(fs, names)

    cmdline_name = by_lower.get("cmdline.txt")
    cmdline_text = to_text(fs.read(cmdline_name)) if cmdline_name else ""
    result["cmdline"] = cmdline_text.split("\n", 1)[0]
    if p["detect_only"]:
        module.exit_json(**result)

    writes = []  # (name, bytes)
    removes = []
    for name, content in sorted(p["files"].items()):
        data = to_bytes("" if content is None else content)
        current_name = by_lower.get(name.lower())
        current = fs.read(current_name) if current_name else None
        if current != data:
            writes.append((current_name or name, data))
            shown = "(absent)" if current is None else to_text(current, errors="replace")
            diff_before.append("# %s\n%s" % (name, shown))
            diff_after.append("# %s\n%s" % (name, to_text(data, errors="replace")))

    if p["cmdline_ensure"] or p["cmdline_remove_keys"]:
        if not cmdline_name:
            module.fail_json(msg="cmdline.txt not found on the boot partition", boot_files=names)
        try:
            new_text, cmd_changed = ensure_tokens(cmdline_text, p["cmdline_ensure"], p["cmdline_remove_keys"])
        except ValueError as exc:
            module.fail_json(msg=str(exc))
        result["cmdline"] = new_text.split("\n", 1)[0]
        if cmd_changed:
            writes.append((cmdline_name, to_bytes(new_text)))
            diff_before.append("# cmdline.txt\n%s" % cmdline_text)
            diff_after.append("# cmdline.txt\n%s" % new_text)

    for name in p["remove_files"]:
        current_name = by_lower.get(name.lower())
        if current_name:
            removes.append(current_name)
            diff_before.append("# %s: present" % current_name)
            diff_after.append("# %s: removed" % current_name)

    result["files_changed"] = [n for n, _ in writes] + removes
    if result["files_changed"]:
        result["changed"] = True
        if not module.check_mode:
            for name, data in writes:
                fs.write(name, data)
            for name in removes:
                fs.remove(name)

    if module._diff:
        target = p["image"] or p["boot_dir"]
        diff.update(before="\n".join(diff_before) + ("\n" if diff_before else ""),
                    after="\n".join(diff_after) + ("\n" if diff_after else ""),
                    before_header=target, after_header=target)
        result["diff"] = diff
    module.exit_json(**result)


if __name__ == "__main__":
    main()
