# -*- coding: utf-8 -*-
# Copyright: pi-cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The cluster contract: every name several layers share is defined once (inventory/group_vars/all/cluster.yml).

A shared literal (a namespace, a Service, the appdb's database or schema, ...) written as a value anywhere else in
the Ansible content or the plugins is a second definition that can drift: the test lists every such place.
Documentation is allowed: YAML and Jinja comments, descriptions, task names and messages, Python docstrings, messages
(strings of words that are not SQL) and the modules'
DOCUMENTATION/EXAMPLES/RETURN. Not scanned: dags/ (they run inside Airflow and get the names from the Airflow
Variables the airflow role sets), the SQL migrations (immutable, checksummed: they create the schema), tests.
"""

from __future__ import annotations

import ast
import re
import subprocess

import pytest
import yaml
from conftest import CLUSTER_CONTRACT_FILE, CONTRACT, REPO

# literal -> the contract variable that owns it. The pattern allows a pod suffix (-0) after a Service name.
SHARED_LITERALS = {
    "postgresql-primary": ("pi_cluster_appdb_service", r"(?<![\w-])postgresql-primary(?![\w])"),
    "databases": ("pi_cluster_appdb_namespace", r"(?<![\w-])databases(?![\w-])"),
    "appdb": ("pi_cluster_appdb_database", r"(?<![\w-])appdb(?![\w-])"),
    # (not a label key such as financial_screener/job_name)
    "financial_screener": ("pi_cluster_appdb_schema", r"(?<![\w-])financial_screener(?![\w/-])"),
    "financial-screener": ("pi_cluster_jobs_namespace", r"(?<![\w-])financial-screener(?![\w-])"),
    "longhorn-system": ("pi_cluster_longhorn_namespace", r"(?<![\w-])longhorn-system(?![\w-])"),
    "nfs-provisioner": ("pi_cluster_nfs_provisioner_namespace", r"(?<![\w-])nfs-provisioner(?![\w-])"),
    "nfs-client": ("pi_cluster_rwx_storage_class", r"(?<![\w-])nfs-client(?![\w-])"),
    "airflow-api-server": ("pi_cluster_airflow_api_service", r"(?<![\w-])airflow-api-server(?![\w-])"),
    "airflow-postgresql": ("pi_cluster_airflow_db_service", r"(?<![\w-])airflow-postgresql(?![\w-])"),
    "financial-screener-dags": ("pi_cluster_dags_git_repo", r"financial-screener-dags"),
}

# YAML keys whose values are prose, not definitions.
DOC_KEYS = {"description", "short_description", "msg", "fail_msg", "success_msg", "notes", "author",
            "DOCUMENTATION", "EXAMPLES", "RETURN"}
SCANNED = ("roles", "playbooks", "plugins", "inventory", "molecule", "scripts", "site.yml", "Makefile", "galaxy.yml")


def _tracked_files():
    out = subprocess.run(["git", "ls-files", "--", *SCANNED], cwd=REPO, capture_output=True, text=True, check=True)
    files = set(out.stdout.split())
    # files added but not committed yet are part of the tree too
    others = subprocess.run(["git", "ls-files", "--others", "--exclude-standard", "--", *SCANNED], cwd=REPO,
                            capture_output=True, text=True, check=True)
    files |= set(others.stdout.split())
    files.discard(str(CLUSTER_CONTRACT_FILE.relative_to(REPO)))
    return sorted(f for f in files if (REPO / f).is_file() and not (REPO / f).is_symlink())


def _yaml_values(node, key=None):
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _yaml_values(v, k)
    elif isinstance(node, list):
        for item in node:
            yield from _yaml_values(item, key)
    elif isinstance(node, str):
        if key in DOC_KEYS or (key == "name" and " " in node.strip() and "{{" not in node):
            return
        yield node


SQL_WORDS = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE|CREATE|ALTER|FROM|INTO)\b")


def _is_python_prose(value):
    """A message (words separated by spaces) documents; a name or an SQL statement defines."""
    return bool(re.search(r"\s", value.strip())) and not SQL_WORDS.search(value)


def _python_values(text):
    tree = ast.parse(text)
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id in (
                "DOCUMENTATION", "EXAMPLES", "RETURN") for t in node.targets):
            skip.update(id(n) for n in ast.walk(node))
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                skip.add(id(first.value))
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip \
                and not _is_python_prose(node.value):
            yield node.value


def _strip_hash_comments(text):
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))


def values_of(path):
    """The value strings of a file: what it defines, without its documentation."""
    text = (REPO / path).read_text(errors="replace")
    if path.endswith((".yml", ".yaml")):
        if text.startswith("$ANSIBLE_VAULT"):
            return []
        return list(_yaml_values(yaml.safe_load(text)))
    if path.endswith(".py"):
        return list(_python_values(text))
    if path.endswith(".j2"):
        return [_strip_hash_comments(re.sub(r"\{#.*?#\}", "", text, flags=re.S))]
    if path.endswith((".sh", "Makefile", ".cfg", ".txt", ".toml")):
        return [_strip_hash_comments(text)]
    return []


@pytest.fixture(scope="module")
def definitions():
    """literal -> sorted list of files that define it (outside the contract)."""
    found = {literal: set() for literal in SHARED_LITERALS}
    for path in _tracked_files():
        values = values_of(path)
        for literal, (_, pattern) in SHARED_LITERALS.items():
            if any(re.search(pattern, value) for value in values):
                found[literal].add(path)
    return {literal: sorted(paths) for literal, paths in found.items()}


def test_every_shared_literal_is_owned_by_the_contract():
    contract_values = [str(v) for v in CONTRACT.values()] + [
        str(item) for v in CONTRACT.values() if isinstance(v, list) for item in v]
    raw = yaml.safe_load(CLUSTER_CONTRACT_FILE.read_text())
    for literal, (owner, pattern) in SHARED_LITERALS.items():
        assert owner in raw, owner
        assert re.search(pattern, str(CONTRACT[owner])), (literal, owner, CONTRACT[owner])
        assert any(re.search(pattern, value) for value in contract_values), literal


@pytest.mark.parametrize("literal", sorted(SHARED_LITERALS))
def test_shared_literal_is_defined_only_in_the_contract(definitions, literal):
    owner = SHARED_LITERALS[literal][0]
    assert definitions[literal] == [], (
        "%r is the cluster contract's %s (inventory/group_vars/all/cluster.yml); derive it from there instead of "
        "defining it again in: %s" % (literal, owner, ", ".join(definitions[literal])))


def test_the_scan_sees_a_second_definition():
    """The scan is not blind: a literal in a role default, a module default or a template is found."""
    pattern = SHARED_LITERALS["databases"][1]
    samples = {
        "defaults.yml": "# databases in a comment is fine\nx_namespace: databases\n",
        "module.py": ('"""databases in a docstring is fine"""\nDOCUMENTATION = "default: databases"\n'
                      'x = dict(default="databases")\n'),
        "t.j2": "{# databases #}\n# databases\nnamespace: databases\n",
    }
    checks = {
        "yml": list(_yaml_values(yaml.safe_load(samples["defaults.yml"]))),
        "py": list(_python_values(samples["module.py"])),
        "j2": [_strip_hash_comments(re.sub(r"\{#.*?#\}", "", samples["t.j2"], flags=re.S))],
    }
    for kind, values in checks.items():
        assert sum(bool(re.search(pattern, v)) for v in values) == 1, (kind, values)
    prose = list(_yaml_values({"description": "the databases namespace", "name": "Create the databases namespace"}))
    assert prose == []


ROLE_NAME_SUFFIXES = ("_namespace", "_release_name", "_storage_class", "_service", "_service_name")


def test_role_defaults_derive_shared_names_from_the_contract():
    """A role's namespace/release/Service/StorageClass default is the contract's variable, not a literal copy."""
    literal = []
    for defaults in sorted(REPO.glob("roles/*/defaults/main.yml")):
        for key, value in (yaml.safe_load(defaults.read_text()) or {}).items():
            if key.endswith(ROLE_NAME_SUFFIXES) and isinstance(value, (str, list)) and "pi_cluster_" not in str(value):
                literal.append("%s: %s=%r" % (defaults.parent.parent.name, key, value))
    assert literal == [], literal


def test_lab_inventory_sees_the_contract():
    link = REPO / "inventory" / "lab" / "group_vars" / "all" / "cluster.yml"
    assert link.is_symlink() and link.resolve() == CLUSTER_CONTRACT_FILE.resolve()


def _mode_lists(path):
    """Lists of DAG modes defined in a file (YAML lists, Python lists/tuples/sets of the two mode names)."""
    modes = {"git_sync", "rwx_pvc"}
    text = (REPO / path).read_text(errors="replace")
    found = []
    if path.endswith((".yml", ".yaml")) and not text.startswith("$ANSIBLE_VAULT"):
        def walk(node, key=None):
            if isinstance(node, dict):
                for k, v in node.items():
                    if k not in DOC_KEYS:
                        walk(v, k)
            elif isinstance(node, list):
                if modes <= {str(item) for item in node}:
                    found.append("%s: %s" % (key, node))
                for item in node:
                    walk(item, key)
            elif isinstance(node, str) and key not in DOC_KEYS and all(
                    re.search(r"['\"]%s['\"]" % m, node) for m in modes):
                found.append("%s: %s" % (key, node))
        walk(yaml.safe_load(text))
    elif path.endswith(".py"):
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.List, ast.Tuple, ast.Set)) and modes <= {
                    getattr(e, "value", None) for e in node.elts}:
                found.append("line %d" % node.lineno)
    elif path.endswith(".j2") and all(re.search(r"['\"]%s['\"]" % m, text) for m in modes):
        found.append("both modes compared")
    return found


def test_the_dag_modes_are_written_once():
    """The allowed DAG modes live in plugins/module_utils/dag_mode.py (DAG_MODES); everything else asks it."""
    owner = "plugins/module_utils/dag_mode.py"
    places = {path: found for path in _tracked_files() if path != owner for found in [_mode_lists(path)] if found}
    assert places == {}
    assert _mode_lists(owner) == ["line %d" % next(
        i for i, line in enumerate((REPO / owner).read_text().splitlines(), 1) if line.startswith("DAG_MODES"))]


def test_no_merge_conflict_markers_are_committed():
    """A rebase once left <<<<<<< / >>>>>>> lines in a role README: no tracked text file may hold them."""
    import subprocess

    out = subprocess.run(["git", "grep", "-n", "-I", "-E", "^(<{7} |>{7} |={7}$)"], cwd=REPO,
                         capture_output=True, text=True).stdout
    assert out == "", out
