"""The prefork callback: what the task workers inherit from the controller (filters, tests, frozen objects)."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from conftest import REPO

# A fresh interpreter set up as ansible-playbook sets itself up (the collection loader installed before any
# ansible_collections import), then one play start.
PROBE = textwrap.dedent(
    """
    import gc, json, sys
    from ansible.plugins.loader import filter_loader, init_plugin_loader, test_loader
    init_plugin_loader([sys.argv[1]])
    from ansible_collections.stratdata.pi_cluster.plugins.callback import prefork
    before = {"filters": len(filter_loader._cached_non_collection_wrappers), "frozen": gc.get_freeze_count()}
    prefork.CallbackModule().v2_playbook_on_play_start(None)
    print(json.dumps({
        "before": before,
        "builtin_filters": sorted(n for n in ("bool", "to_json", "ansible.builtin.regex_replace")
                                  if n in filter_loader._cached_non_collection_wrappers),
        "builtin_tests": sorted(n for n in ("match", "version") if n in test_loader._cached_non_collection_wrappers),
        "modules": sorted(m for m in sys.modules if m.startswith("ansible_collections.stratdata.pi_cluster.plugins.")),
        "fqcn": filter_loader.get("stratdata.pi_cluster.k3s_upgrade_plan") is not None,
        "frozen": gc.get_freeze_count(),
        "names": {kind: sorted(prefork._collection_plugin_names(kind)) for kind in ("filter", "test")},
    }))
    """
)


def test_play_start_loads_filters_and_tests_and_freezes():
    out = subprocess.run([sys.executable, "-c", PROBE, str(REPO / "collections")], cwd=REPO, capture_output=True,
                         text=True, check=True)
    got = json.loads(out.stdout)
    # nothing loaded before the play starts: a worker forked then would load it all itself
    assert got["before"] == {"filters": 0, "frozen": 0}
    # the cache a worker consults before importing every filter/test plugin file again (Jinja2Loader)
    assert got["builtin_filters"] == ["ansible.builtin.regex_replace", "bool", "to_json"]
    assert got["builtin_tests"] == ["match", "version"]
    # the collection's own plugins, by the module names the plugin loader gives them
    for module in ("filter.k3s", "filter.pi_host", "filter.assessment", "test.dag_mode"):
        assert f"ansible_collections.stratdata.pi_cluster.plugins.{module}" in got["modules"]
    assert got["fqcn"] and got["frozen"] > 10000
    assert {"stratdata.pi_cluster.is_ip", "stratdata.pi_cluster.file_differs"} <= set(got["names"]["filter"])
    assert got["names"]["test"] == ["stratdata.pi_cluster.dag_mode"]


def test_documented_for_ansible_doc():
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"))
    out = subprocess.run([str(Path(sys.executable).parent / "ansible-doc"), "-t", "callback",
                          "stratdata.pi_cluster.prefork"], cwd=REPO, env=env, capture_output=True, text=True,
                         check=False)
    assert out.returncode == 0, out.stderr
    assert "stratdata.pi_cluster.prefork" in out.stdout and "WARNING" not in out.stderr
