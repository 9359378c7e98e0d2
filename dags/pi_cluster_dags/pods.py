"""KubernetesPodOperator for the screener jobs: resources from plain data, plus a dry-run mode."""

from __future__ import annotations

import json
import os

from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
from kubernetes.client import models as k8s

from pi_cluster_dags.settings import DRY_RUN_ENV, DRY_RUN_VAR


def resource_requirements(value) -> k8s.V1ResourceRequirements | None:
    """V1ResourceRequirements from ``{"requests": {...}, "limits": {...}}`` (XCom carries plain JSON)."""
    if value is None or isinstance(value, k8s.V1ResourceRequirements):
        return value
    requests = {k: v for k, v in (value.get("requests") or {}).items() if v}
    limits = {k: v for k, v in (value.get("limits") or {}).items() if v}
    return k8s.V1ResourceRequirements(requests=requests or None, limits=limits or None)


def resources_from_row(cpu_request, memory_request, cpu_limit=None, memory_limit=None) -> dict:
    """The JSON form of a dag_configuration row's resources (limits only when set)."""
    limits = {k: v for k, v in (("cpu", cpu_limit), ("memory", memory_limit)) if v}
    return {"requests": {"cpu": cpu_request, "memory": memory_request}, "limits": limits}


def dry_run_enabled() -> bool:
    if os.environ.get(DRY_RUN_ENV, "").lower() == "true":
        return True
    from airflow.sdk import Variable  # run time only

    return str(Variable.get(DRY_RUN_VAR, default="false")).lower() == "true"


class ScreenerPodOperator(KubernetesPodOperator):
    """KubernetesPodOperator whose ``container_resources`` may be a plain dict (e.g. mapped from XCom).

    With the Variable ``pi_cluster_dags_dry_run`` = ``true`` (or env ``PI_CLUSTER_DAGS_DRY_RUN=true``) it
    builds the exact pod it would create, logs it and returns it as XCom instead of talking to a cluster.
    """

    def execute(self, context):
        self.container_resources = resource_requirements(self.container_resources)
        if not dry_run_enabled():
            return super().execute(context)
        # The hook would contact the cluster only to ask whether it runs in-cluster; answer offline.
        self.hook._is_in_cluster = False
        pod = self.build_pod_request_obj(context)
        spec = k8s_sanitize(pod)
        self.log.info("DRY RUN: pod that would be created:\n%s", json.dumps(spec, indent=2, sort_keys=True))
        container = spec["spec"]["containers"][0]
        self.do_xcom_push = True  # push the summary below (the real mode keeps xcom sidecars off)
        return {
            "pod_name": spec["metadata"]["name"],
            "namespace": spec["metadata"]["namespace"],
            "image": container.get("image"),
            "args": container.get("args"),
            "env": {e["name"]: e.get("value") for e in container.get("env", [])},
            "resources": container.get("resources"),
            "resources_type": type(pod.spec.containers[0].resources).__name__,
            "pod": spec,  # the whole pod as the API would receive it (labels, containers, resources)
        }


def k8s_sanitize(obj):
    from kubernetes.client import ApiClient

    return ApiClient().sanitize_for_serialization(obj)
