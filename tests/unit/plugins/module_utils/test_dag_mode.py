# -*- coding: utf-8 -*-
# Copyright: pi-cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one mapping from the DAG delivery mode to the chart's dags values (plugins/module_utils/dag_mode.py).

Checked for both modes through every consumer: the module_utils function, the filter the airflow role's values
template calls, the test plugin of the role's checks and the repair plan's desired values.
"""


import pytest
from conftest import CONTRACT


from ansible.errors import AnsibleFilterError  # noqa: E402
from ansible_collections.stratdata.pi_cluster.plugins.filter import dag_mode as filter_plugin  # noqa: E402
from ansible_collections.stratdata.pi_cluster.plugins.module_utils import dag_mode as D  # noqa: E402
from ansible_collections.stratdata.pi_cluster.plugins.module_utils import repair_plan as R  # noqa: E402
from ansible_collections.stratdata.pi_cluster.plugins.test import dag_mode as test_plugin  # noqa: E402

RWX = CONTRACT["pi_cluster_rwx_storage_class"]


def test_the_modes():
    assert D.DAG_MODES == ("git_sync", "rwx_pvc")
    assert CONTRACT["pi_cluster_dags_mode"] in D.DAG_MODES


def test_git_sync_turns_git_sync_on_and_the_volume_off():
    assert D.dag_chart_values("git_sync") == {"persistence": {"enabled": False}, "gitSync": {"enabled": True}}
    # the RWX settings do not matter in git_sync mode
    assert D.dag_chart_values("git_sync", RWX, "1Gi", "claim") == D.dag_chart_values("git_sync")


def test_rwx_pvc_turns_a_readwritemany_volume_on_and_git_sync_off():
    assert D.dag_chart_values("rwx_pvc", RWX, "1Gi") == {
        "persistence": {"enabled": True, "accessMode": "ReadWriteMany", "storageClassName": RWX, "size": "1Gi"},
        "gitSync": {"enabled": False}}
    with_claim = D.dag_chart_values("rwx_pvc", RWX, rwx_claim="airflow-dags-rwx")
    assert with_claim["persistence"]["existingClaim"] == "airflow-dags-rwx" and "size" not in with_claim["persistence"]


@pytest.mark.parametrize("args, message", [
    (("both",), "pi_cluster_dags_mode must be one of git_sync, rwx_pvc, not 'both'"),
    ((None,), "must be one of"),
    (("rwx_pvc",), "needs the ReadWriteMany storage class"),
])
def test_bad_input_is_a_clear_error(args, message):
    with pytest.raises(ValueError, match=message):
        D.dag_chart_values(*args)


def test_a_readwriteonce_dag_volume_is_refused():
    with pytest.raises(ValueError, match="Multi-Attach"):
        D.dag_chart_values("rwx_pvc", RWX, access_mode="ReadWriteOnce")
    # git_sync has no volume, so its access mode setting is irrelevant
    assert D.dag_chart_values("git_sync", access_mode="ReadWriteOnce")["gitSync"]["enabled"] is True


@pytest.mark.parametrize("mode", D.DAG_MODES)
def test_filter_and_repair_plan_use_the_same_mapping(mode):
    nested = filter_plugin.FilterModule().filters()["dag_chart_values"](mode, RWX)
    assert nested == D.dag_chart_values(mode, RWX)
    assert R.desired_values(mode, RWX) == D.flatten({"dags": nested})
    assert test_plugin.TestModule().tests()["dag_mode"](mode) is True


def test_the_filter_turns_errors_into_filter_errors():
    with pytest.raises(AnsibleFilterError, match="dag_chart_values: pi_cluster_dags_mode must be one of"):
        filter_plugin.dag_chart_values("copy_by_hand")
    assert test_plugin.dag_mode("copy_by_hand") is False


def test_flatten():
    assert D.flatten({"a": {"b": 1, "c": {"d": None}}, "e": []}) == {"a.b": 1, "a.c.d": None, "e": []}
