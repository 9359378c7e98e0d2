"""The collection's layout, inventory, tags and dependency pins, as a user meets them."""

import configparser
import json
import re
import tarfile

import pytest
import yaml
from ansible.galaxy.dependency_resolution.versioning import meets_requirements
from conftest import REPO, run_ansible

ROLES = sorted(p.name for p in (REPO / "roles").iterdir() if p.is_dir())
HOSTS = ["pi-master"] + ["pi-worker-%02d" % n for n in range(2, 8)]
LAB_VAULT = ["--vault-password-file", "lab/vault-password.txt"]


@pytest.mark.ansible
def test_bundled_collections_satisfy_requirements_yml():
    wanted = yaml.safe_load((REPO / "requirements.yml").read_text())["collections"]
    listed = run_ansible(["ansible-galaxy", "collection", "list", "--format", "json"])
    assert listed.returncode == 0, listed.stdout
    installed = {}
    for path_entries in json.loads(listed.stdout[listed.stdout.index("{"):]).values():
        for name, info in path_entries.items():
            installed.setdefault(name, info["version"])
    for item in wanted:
        assert item["name"] in installed, "%s is not bundled by the pinned ansible package" % item["name"]
        version = installed[item["name"]]
        assert meets_requirements(version, item["version"]), "%s %s does not satisfy %s" % (
            item["name"], version, item["version"])


def test_galaxy_dependencies_match_requirements_yml():
    galaxy = yaml.safe_load((REPO / "galaxy.yml").read_text())
    wanted = {c["name"] for c in yaml.safe_load((REPO / "requirements.yml").read_text())["collections"]}
    assert set(galaxy["dependencies"]) <= wanted


def test_python_requirements_are_pinned():
    lines = [ln.split("#")[0].strip() for ln in (REPO / "requirements-dev.txt").read_text().splitlines()]
    reqs = [ln for ln in lines if ln]
    assert reqs and all(re.match(r"^[A-Za-z0-9_.\[\]-]+==[\w.]+$", ln) for ln in reqs), reqs
    names = {re.split(r"[\[=]", ln)[0].lower() for ln in reqs}
    assert {"ansible", "kubernetes", "molecule", "pytest", "pytest-testinfra", "jmespath"} <= names


def test_ansible_cfg_settings():
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "ansible.cfg")
    d = cfg["defaults"]
    assert d["inventory"] == "inventory/hosts.yml"
    assert "./collections" in d["collections_path"].split(":")
    assert int(d["forks"]) >= 10
    assert d["fact_caching"] == "jsonfile" and d["fact_caching_connection"].startswith(".cache")
    assert "profile_tasks" in d["callbacks_enabled"]
    assert "stratdata.pi_cluster.prefork" in d["callbacks_enabled"]
    assert cfg["ssh_connection"].getboolean("pipelining")
    assert "ControlPersist" in cfg["ssh_connection"]["ssh_args"]
    assert ".cache/" in (REPO / ".gitignore").read_text()


@pytest.mark.ansible
def test_collection_symlink_resolves_own_fqcns():
    link = REPO / "collections" / "ansible_collections" / "stratdata" / "pi_cluster"
    assert link.is_symlink() and link.resolve() == REPO
    doc = run_ansible(["ansible-doc", "stratdata.pi_cluster.preflight_inventory"])
    assert doc.returncode == 0 and "Checks the topology" in doc.stdout, doc.stdout


@pytest.mark.ansible
def test_inventory_graph_shows_seven_hosts_in_their_groups():
    out = run_ansible(["ansible-inventory", "--graph"] + LAB_VAULT)
    assert out.returncode == 0, out.stdout
    graph = out.stdout
    for group in ("@k3s_cluster", "@k3s_server", "@k3s_agents", "@nfs_server", "@longhorn_nodes"):
        assert group in graph
    listed = json.loads(run_ansible(["ansible-inventory", "--list"] + LAB_VAULT).stdout)
    all_hosts = set(listed["_meta"]["hostvars"])
    assert all_hosts == set(HOSTS)
    assert listed["k3s_server"]["hosts"] == ["pi-master"]
    assert listed["k3s_agents"]["hosts"] == HOSTS[1:]


@pytest.mark.ansible
def test_example_vault_is_encrypted_and_has_every_required_variable():
    vault = REPO / "inventory" / "group_vars" / "all" / "vault.yml"
    assert vault.read_text().startswith("$ANSIBLE_VAULT;1.1;AES256")
    plain = run_ansible(["ansible-vault", "view", str(vault)] + LAB_VAULT)
    assert plain.returncode == 0, plain.stdout
    values = yaml.safe_load(plain.stdout)
    main_vars = yaml.safe_load((REPO / "inventory/group_vars/all/main.yml").read_text())
    required = main_vars["pi_cluster_required_vault_vars"]
    assert values["vault_is_example"] is True
    for name in required:
        assert values.get(name), name


def undocumented_defaults(role_dir):
    """Variables of defaults/main.yml that lack a comment or an argument-spec description.

    A variable is commented when it has a trailing comment or the contiguous block of lines it sits in
    (no blank line between) starts with a comment: either its own comment or that of its group, e.g.
    "# Chart: version and repository" above two variables. It must also be declared, with a description,
    in one of the role's argument_specs entry points."""
    defaults = role_dir / "defaults" / "main.yml"
    if not defaults.exists():
        return []
    lines = defaults.read_text().splitlines()
    entry_points = yaml.safe_load((role_dir / "meta" / "argument_specs.yml").read_text())["argument_specs"]
    described = {name for spec in entry_points.values() for name, option in (spec.get("options") or {}).items()
                 if str(option.get("description") or "").strip()}
    problems = []
    for index, line in enumerate(lines):
        match = re.match(r"^([A-Za-z_][A-Za-z0-9_]*):", line)
        if not match:
            continue
        name = match.group(1)
        above = index - 1
        while above >= 0 and lines[above].strip() and not lines[above].lstrip().startswith("#"):
            above -= 1
        if not re.search(r"\s#\s", line) and not (above >= 0 and lines[above].lstrip().startswith("#")):
            problems.append("%s: no comment" % name)
        if name not in described:
            problems.append("%s: no argument_specs description" % name)
    return problems


def test_every_role_has_argument_specs_and_documented_defaults():
    for role in ROLES:
        specs = REPO / "roles" / role / "meta" / "argument_specs.yml"
        assert specs.exists(), "%s lacks meta/argument_specs.yml" % role
        assert "main" in yaml.safe_load(specs.read_text())["argument_specs"], role
        assert undocumented_defaults(REPO / "roles" / role) == [], role


def test_an_undocumented_default_is_found(tmp_path):
    """A file header comment does not document the variables below a blank line (the old check counted any #)."""
    role = tmp_path / "x"
    (role / "defaults").mkdir(parents=True)
    (role / "meta").mkdir()
    (role / "defaults" / "main.yml").write_text(
        "# x: a role\n\n"
        "# Chart version and repository.\nx_version: 1.0\nx_repo: https://example.invalid\n\n"
        "x_undocumented: 1\n"
        "x_trailing: 2  # documented by its trailing comment\n"
        "x_block:\n  - a\n"
    )
    (role / "meta" / "argument_specs.yml").write_text(yaml.safe_dump({"argument_specs": {"main": {"options": {
        "x_version": {"description": "Chart version."}, "x_repo": {"description": "Chart repository."},
        "x_undocumented": {"description": "Described in the spec only."}, "x_trailing": {"type": "int"},
        "x_block": {"description": "A list."}}}}}))
    assert undocumented_defaults(role) == [
        "x_undocumented: no comment", "x_trailing: no argument_specs description",
        "x_block: no comment"]


@pytest.mark.ansible
def test_site_syntax_check():
    out = run_ansible(["ansible-playbook", "--syntax-check", "site.yml"])
    assert out.returncode == 0, out.stdout


@pytest.mark.ansible
def test_list_tags_has_a_tag_per_role_and_per_layer():
    out = run_ansible(["ansible-playbook", "site.yml", "--list-tags"])
    assert out.returncode == 0, out.stdout
    tags = set()
    for match in re.finditer(r"TASK TAGS: \[([^\]]*)\]", out.stdout):
        tags |= {t.strip() for t in match.group(1).split(",") if t.strip()}
    for role in ROLES:
        # k3s_binary and k3s_node have no play of their own: k3s_server and k3s_agent call them
        assert role in tags or role in ("k3s_binary", "k3s_node"), "no tag for role %s" % role
    for layer in ("image", "os", "k3s", "storage", "backup", "data", "airflow", "monitoring", "verify"):
        assert layer in tags, layer


@pytest.mark.ansible
def test_airflow_tag_lists_only_the_airflow_layer():
    """--tags airflow lists preflight (tag always) and the Airflow play's tasks. Ansible adds an
    always-tagged "Validating arguments" task to every role that has argument specs; those only check
    variables, so they are the one exception allowed in the other plays."""
    out = run_ansible(["ansible-playbook", "site.yml", "--tags", "airflow", "--list-tasks"] + LAB_VAULT)
    assert out.returncode == 0, out.stdout
    chunks = re.split(r"^\s*play #\d+ \([^)]*\): ", out.stdout, flags=re.M)[1:]
    listed = {}
    for chunk in chunks:
        name = chunk.split("\t", 1)[0].strip()
        tasks = [ln.strip() for ln in chunk.splitlines()[1:] if "TAGS:" in ln and "TASK TAGS" not in ln]
        listed[name] = [t for t in tasks if "Validating arguments against arg spec" not in t]
    plays_with_tasks = [name for name, tasks in listed.items() if tasks]
    assert plays_with_tasks[0].startswith("Preflight"), plays_with_tasks
    assert len(plays_with_tasks) == 2 and plays_with_tasks[1].startswith("Airflow"), plays_with_tasks
    airflow_tasks = listed[plays_with_tasks[1]]
    assert len(airflow_tasks) > 3 and all("airflow" in t for t in airflow_tasks), airflow_tasks


@pytest.mark.parametrize("playbook", sorted(p.name for p in (REPO / "playbooks").glob("*.yml")))
@pytest.mark.ansible
def test_every_playbook_passes_syntax_check(playbook):
    out = run_ansible(["ansible-playbook", "--syntax-check", "playbooks/%s" % playbook])
    assert out.returncode == 0, out.stdout


@pytest.mark.ansible
def test_collection_builds(tmp_path):
    out = run_ansible(["ansible-galaxy", "collection", "build", "--output-path", str(tmp_path), "--force"])
    assert out.returncode == 0, out.stdout
    tarball = next(tmp_path.glob("stratdata-pi_cluster-*.tar.gz"))
    with tarfile.open(tarball) as tar:
        names = tar.getnames()
    assert "plugins/modules/preflight_inventory.py" in names
    assert "roles/preflight/tasks/main.yml" in names
    assert not any(n.startswith(("collections/", "tests/", ".git/", "lab/")) for n in names)
    assert "LICENSE" in names
    with tarfile.open(tarball) as tar:
        manifest = json.load(tar.extractfile("MANIFEST.json"))
    assert manifest["collection_info"]["license"] == ["GPL-3.0-or-later"]


def test_one_licence_everywhere():
    """GPL-3.0-or-later: the LICENSE file (full GPLv3 text), galaxy.yml, every role's meta and every file header."""
    assert "GNU GENERAL PUBLIC LICENSE" in (REPO / "LICENSE").read_text()[:200]
    assert "Version 3, 29 June 2007" in (REPO / "LICENSE").read_text()[:200]
    assert yaml.safe_load((REPO / "galaxy.yml").read_text())["license"] == ["GPL-3.0-or-later"]
    for meta in sorted(REPO.glob("roles/*/meta/main.yml")):
        assert yaml.safe_load(meta.read_text())["galaxy_info"]["license"] == "GPL-3.0-or-later", meta
    other = [str(p.relative_to(REPO)) for p in REPO.glob("**/*.py") if "collections" not in p.parts
             and re.search(r"Apache License|Apache-2\.0|\bMIT License|license: MIT", p.read_text()[:400])]
    assert other == []
    for path in sorted(REPO.glob("plugins/**/*.py")):
        assert "GNU General Public License v3.0+" in path.read_text()[:400], path
