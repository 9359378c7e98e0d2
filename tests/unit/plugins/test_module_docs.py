# -*- coding: utf-8 -*-
# Copyright: pi-cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every module's DOCUMENTATION, EXAMPLES and RETURN are valid YAML (ansible-doc and ansible-lint only warn
when they are not, and the module then has no documentation at all)."""

import ast

import pytest
import yaml
from conftest import REPO

MODULES = sorted((REPO / "plugins" / "modules").glob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=[p.stem for p in MODULES])
def test_module_documentation_is_valid_yaml(path):
    blocks = {}
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") in ("DOCUMENTATION", "EXAMPLES",
                                                                                     "RETURN"):
            blocks[node.targets[0].id] = node.value.value
    assert set(blocks) == {"DOCUMENTATION", "EXAMPLES", "RETURN"}, path.name
    for name, text in blocks.items():
        try:
            yaml.safe_load(text)
        except yaml.YAMLError as exc:
            pytest.fail("%s %s: %s" % (path.name, name, exc))
    doc = yaml.safe_load(blocks["DOCUMENTATION"])
    assert doc["module"] == path.stem and doc.get("short_description"), path.name
