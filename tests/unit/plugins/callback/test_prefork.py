"""The prefork callback: what the task workers inherit from the controller (filters, tests, frozen objects)."""

import gc
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO



@pytest.fixture(scope="module")
def prefork():
    from ansible.plugins.loader import init_plugin_loader
    from ansible.utils.collection_loader._collection_finder import _AnsibleCollectionFinder

    if not any(isinstance(finder, _AnsibleCollectionFinder) for finder in sys.meta_path):
        init_plugin_loader([str(REPO / "collections")])
    from ansible_collections.stratdata.pi_cluster.plugins.callback import prefork as module

    yield module
    gc.unfreeze()


def test_play_start_loads_filters_and_tests_and_freezes(prefork):
    from ansible.plugins.loader import filter_loader, test_loader

    gc.unfreeze()
    prefork.CallbackModule().v2_playbook_on_play_start(None)

    # the cache a worker consults before importing every filter/test plugin file again (loader.py, Jinja2Loader)
    assert "bool" in filter_loader._cached_non_collection_wrappers
    assert "match" in test_loader._cached_non_collection_wrappers
    # the collection's own plugins, by the module names the loader gives them
    for module in ("filter.k3s", "filter.pi_host", "filter.assessment", "test.dag_mode"):
        assert f"ansible_collections.stratdata.pi_cluster.plugins.{module}" in sys.modules
    assert filter_loader.get("stratdata.pi_cluster.k3s_upgrade_plan") is not None
    assert gc.get_freeze_count() > 0


def test_collection_plugin_names_are_fqcn(prefork):
    names = set(prefork._collection_plugin_names("filter"))
    assert {"stratdata.pi_cluster.is_ip", "stratdata.pi_cluster.file_differs"} <= names
    assert set(prefork._collection_plugin_names("test")) == {"stratdata.pi_cluster.dag_mode"}


def test_documented_for_ansible_doc():
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"))
    out = subprocess.run([str(Path(sys.executable).parent / "ansible-doc"), "-t", "callback",
                          "stratdata.pi_cluster.prefork"], cwd=REPO, env=env, capture_output=True, text=True,
                         check=False)
    assert out.returncode == 0, out.stderr
    assert "stratdata.pi_cluster.prefork" in out.stdout and "WARNING" not in out.stderr
