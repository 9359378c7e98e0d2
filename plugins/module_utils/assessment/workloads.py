# -*- coding: utf-8 -*-
# Copyright: pi-cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Workload findings: the component table, pods stuck in Init or not ready, components without pods."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import re

from ansible_collections.stratdata.pi_cluster.plugins.module_utils.assessment.objects import (
    CRITICAL,
    DEFAULT_COMPONENTS,
    OK,
    SKIPPED,
    WARN,
    _unique,
    describe_pod,
    finding,
    meta,
    ref,
    worst,
)

def resolve_components(options):
    components = copy.deepcopy(options.get("components") or DEFAULT_COMPONENTS)
    names = {"airflow": options["airflow_namespace"], "databases_namespace": options["databases_namespace"]}
    for component in components:
        component.setdefault("severity", CRITICAL)
        for selector in component.get("selectors") or []:
            selector["namespace"] = str(selector.get("namespace", "")).format(**names)
            selector.setdefault("required", True)
    return components


def selector_matches(selector, pod):
    if selector.get("namespace") and selector["namespace"] != pod["namespace"]:
        return False
    wanted = selector.get("labels") or {}
    if any(pod["labels"].get(k) != v for k, v in wanted.items()):
        return False
    if selector.get("name_regex") and not re.search(selector["name_regex"], pod["name"] or ""):
        return False
    return bool(wanted or selector.get("name_regex"))


def _component_tag(ctx, pod):
    component = ctx.component_of.get(pod["ref"])
    return component["name"] if component else None


def _pods_in_scope(ctx):
    namespaces = (ctx.options["airflow_namespace"], ctx.options["databases_namespace"])
    return [p for p in ctx.pods if p["namespace"] in namespaces and not p["task_pod"]]


def check_pods_stuck_init(ctx):
    fid = "pods.stuck_init"
    stuck = [p for p in _pods_in_scope(ctx) if p["stuck_init"] and not p["terminating"]]
    unexplained = [p for p in stuck if p["ref"] not in ctx.explained]
    explained = [p for p in stuck if p["ref"] in ctx.explained]
    if not unexplained:
        evidence = ["%s (explained by %s)" % (describe_pod(p), ctx.explained[p["ref"]]) for p in explained]
        return finding(fid, "No pod stuck in Init without a known cause", OK,
                       evidence or ["no pod in Init for more than %ss" % ctx.options["stuck_after_seconds"]])
    statuses = []
    evidence = []
    for pod in unexplained:
        component = ctx.component_of.get(pod["ref"])
        statuses.append(component["severity"] if component else WARN)
        evidence.append("pod %s%s" % (describe_pod(pod), " [%s]" % component["name"] if component else ""))
        for event in ctx.events:
            involved = event.get("involvedObject") or {}
            if involved.get("name") == pod["name"] and event.get("type") == "Warning":
                evidence.append("event %s on %s: %s" % (event.get("reason"), pod["name"], event.get("message")))
    ctx.explain([p["ref"] for p in unexplained], fid)
    return finding(
        fid, "Pods stuck in Init: %s" % ", ".join(p["name"] for p in unexplained), worst(statuses), evidence,
        root_cause=("An init container does not finish: wait-for-airflow-migrations waits for the migration job "
                    "(metadata database unreachable or migrations failed), git-sync-init cannot clone, or a volume "
                    "cannot be mounted (see the events)."),
        impact="The pod never starts its main containers.",
        resolution=("`kubectl -n <ns> logs <pod> -c <init container>` and `kubectl describe pod`; for "
                    "wait-for-airflow-migrations check the run-airflow-migrations job and the metadata database."),
    )


def check_pods_not_ready(ctx):
    fid = "pods.not_ready"
    bad = [p for p in _pods_in_scope(ctx)
           if p["not_ready_long"] and not p["stuck_init"] and p["ref"] not in ctx.explained]
    if not bad:
        scope = _pods_in_scope(ctx)
        return finding(fid, "Every other pod is ready", OK, ["%d of %d pod(s) ready" % (
            len([p for p in scope if p["ready"]]), len([p for p in scope if not p["completed"]]))])
    statuses = []
    evidence = []
    for pod in bad:
        component = ctx.component_of.get(pod["ref"])
        if pod["owner_kind"] == "Job" and not component:
            statuses.append(WARN)
        else:
            statuses.append(component["severity"] if component else WARN)
        line = "pod %s%s" % (describe_pod(pod), " [%s]" % component["name"] if component else "")
        if pod["unschedulable"]:
            line += "; unschedulable: %s" % pod["unschedulable_message"]
        evidence.append(line)
    ctx.explain([p["ref"] for p in bad], fid)
    return finding(
        fid, "Pods not ready: %s" % ", ".join(p["name"] for p in bad), worst(statuses), evidence,
        root_cause="Containers crash or cannot start (CrashLoopBackOff, ImagePullBackOff, failing probes, no node "
                   "with enough resources).",
        impact="The component's work stops or runs degraded.",
        resolution="`kubectl -n <ns> describe pod <pod>` and `kubectl -n <ns> logs <pod> --previous`; fix the "
                   "configuration and re-run the layer that owns it.",
    )


def _workload_for(ctx, component):
    found = []
    for workload in ctx.statefulsets + ctx.deployments:
        for selector in component["selectors"]:
            if selector["namespace"] != meta(workload, "namespace"):
                continue
            wanted = selector.get("labels") or {}
            template_labels = (((workload.get("spec") or {}).get("template") or {}).get("metadata") or {}).get(
                "labels") or {}
            if wanted and all(template_labels.get(k) == v for k, v in wanted.items()):
                found.append(workload)
            elif selector.get("name_regex") and re.search(selector["name_regex"], meta(workload, "name") + "-0"):
                found.append(workload)
    return found


def _workload_line(workload):
    spec = workload.get("spec") or {}
    status = workload.get("status") or {}
    line = "%s %s: %s/%s ready" % (workload.get("kind"), ref(workload), status.get("readyReplicas", 0),
                                   spec.get("replicas", 1))
    return line + (" (scaled to 0)" if spec.get("replicas", 1) == 0 else "")


def evaluate_components(ctx):
    rows = []
    missing = []
    for component in ctx.components:
        statuses = []
        evidence = []
        related = []
        for selector in component["selectors"]:
            pods = [p for p in ctx.pods if selector_matches(selector, p) and not p["completed"]]
            label = selector.get("label")
            if not pods:
                if selector["required"]:
                    statuses.append(component["severity"])
                    missing.append((component, selector))
                    evidence.append("no %spod in namespace %s" % (label + " " if label else "", selector["namespace"]))
                    related.append("components.missing")
                continue
            for pod in pods:
                text = describe_pod(pod)
                if label:
                    text = "%s: %s" % (label, text)
                if pod["ready"]:
                    statuses.append(OK)
                elif pod["terminating"] and any(p["ready"] for p in pods if p is not pod):
                    statuses.append(OK)
                    text += " (being replaced)"
                else:
                    statuses.append(component["severity"] if pod["stuck_for"] is None or pod["not_ready_long"] or
                                    pod["stuck_init"] else WARN)
                    if pod["ref"] in ctx.explained:
                        text += " \u2014 see %s" % ctx.explained[pod["ref"]]
                        related.append(ctx.explained[pod["ref"]])
                evidence.append(text)
        for workload in _workload_for(ctx, component):
            evidence.append(_workload_line(workload))
        rows.append({
            "name": component["name"],
            "status": worst(statuses) if statuses else SKIPPED,
            "evidence": evidence,
            "findings": _unique(related),
        })
    return rows, missing


def check_components_missing(ctx, missing):
    fid = "components.missing"
    if not missing:
        return finding(fid, "Every expected component has pods", OK,
                       ["components: %s" % ", ".join(c["name"] for c in ctx.components)])
    evidence = []
    statuses = []
    for component, selector in missing:
        statuses.append(component["severity"])
        line = "%s: no pod matches %s in namespace %s" % (
            component["name"],
            ", ".join("%s=%s" % kv for kv in sorted((selector.get("labels") or {}).items())) or selector.get(
                "name_regex"),
            selector["namespace"])
        workloads = _workload_for(ctx, {"selectors": [selector]})
        if workloads:
            line += " (%s)" % "; ".join(_workload_line(w) for w in workloads)
        else:
            line += " (no StatefulSet/Deployment either)"
        evidence.append(line)
    return finding(
        fid, "Components without pods: %s" % ", ".join(_unique(c["name"] for c, _s in missing)), worst(statuses),
        evidence,
        root_cause="The workload is missing, scaled to zero, or its pods cannot be created (quota, admission, "
                   "missing service account); for the Airflow components the release may be missing or disabled "
                   "in the values.",
        impact="The component's function is absent.",
        resolution="`helm -n airflow status airflow` / `kubectl get sts,deploy -A`; re-run the owning layer "
                   "(`ansible-playbook site.yml --tags airflow` or `--tags data`).",
    )
