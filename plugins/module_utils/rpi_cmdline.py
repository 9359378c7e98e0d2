# -*- coding: utf-8 -*-
# Copyright: pi-cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Edit the kernel command line of a Raspberry Pi (cmdline.txt) without ever adding a line.

The firmware reads only the FIRST line of cmdline.txt, so every edit happens inside that
line: tokens are kept in order, wanted tokens appear exactly once, and conflicting values of
listed keys are dropped. When nothing needs to change the text is returned unchanged
(byte for byte), which keeps callers idempotent.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


def token_key(token):
    """Key of a kernel argument: 'cgroup_memory=1' -> 'cgroup_memory', 'rootwait' -> 'rootwait'."""
    return token.split("=", 1)[0]


def ensure_tokens(text, ensure=None, remove_keys=None):
    """Return (new_text, changed) for cmdline text `text`.

    ensure: tokens that must appear exactly once in the first line (appended when missing,
        duplicates removed, the first occurrence keeps its place).
    remove_keys: keys whose tokens are dropped, except a token listed in `ensure`
        (so remove_keys=['cgroup_memory'] with ensure=['cgroup_memory=1'] replaces
        cgroup_memory=0 by cgroup_memory=1).
    Lines after the first are kept verbatim (the firmware ignores them).
    """
    ensure = [str(t).strip() for t in (ensure or []) if str(t).strip()]
    remove_keys = set(str(k).strip() for k in (remove_keys or []) if str(k).strip())
    for token in ensure:
        if any(c.isspace() for c in token):
            raise ValueError("kernel argument %r contains whitespace" % token)

    if "\n" in text:
        first, rest = text.split("\n", 1)
        newline = "\n"
    else:
        first, rest, newline = text, "", ""
    tokens = first.split()

    result = []
    seen = set()
    for token in tokens:
        if token in ensure:
            if token in seen:
                continue
            seen.add(token)
            result.append(token)
        elif token_key(token) in remove_keys:
            continue
        else:
            result.append(token)
    for token in ensure:
        if token not in seen:
            seen.add(token)
            result.append(token)

    if result == tokens:
        return text, False
    # An empty file gets a newline so the result is a proper single-line text file.
    return " ".join(result) + (newline or "\n") + rest, True
