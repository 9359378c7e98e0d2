# -*- coding: utf-8 -*-
# Copyright: pi-cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every role has a README (what it does, variables from its argument_specs, dependencies, example, tags) and no
README links to a file that does not exist."""

import re
import subprocess
import sys

import pytest
from conftest import REPO

MD_PATH = r"`((?:roles|docs|playbooks|plugins|scripts|inventory|dags|lab|tests)/[^`\s<>*]+\.md)`"
ROLES = sorted(p.name for p in (REPO / "roles").iterdir() if (p / "meta" / "argument_specs.yml").exists())


@pytest.mark.parametrize("role", ROLES)
def test_every_role_has_a_readme_with_its_sections(role):
    readme = REPO / "roles" / role / "README.md"
    assert readme.exists(), "run python3 scripts/role_readmes.py"
    text = readme.read_text()
    for section in ("## Variables", "## Dependencies", "## Example", "## Tags"):
        assert section in text, (role, section)


def test_the_variables_match_the_argument_specs():
    """The generated part of every README is what scripts/role_readmes.py makes from the role's files now."""
    proc = subprocess.run([sys.executable, "scripts/role_readmes.py", "--check"], cwd=REPO, capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _markdown_files():
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "*.md"], cwd=REPO,
                         capture_output=True, text=True, check=True).stdout.split()
    return sorted(set(out))


def test_no_readme_links_to_a_missing_file():
    missing = []
    for name in _markdown_files():
        path = REPO / name
        if not path.exists():
            continue
        text = path.read_text()
        for match in re.finditer(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
            target = match.group(1)
            if re.match(r"[a-z]+:", target):
                continue
            if not (path.parent / target).exists():
                missing.append("%s -> %s" % (name, target))
        for match in re.finditer(MD_PATH, text):
            if not (REPO / match.group(1)).exists():
                missing.append("%s -> %s" % (name, match.group(1)))
    assert missing == []
