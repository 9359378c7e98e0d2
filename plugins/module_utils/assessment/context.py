# -*- coding: utf-8 -*-
# Copyright: pi-cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every check reads: the options, the normalised objects, volume usage and pods already explained."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from datetime import datetime, timezone

from ansible_collections.stratdata.pi_cluster.plugins.module_utils.assessment.objects import (
    objects,
    parse_time,
    summarize_pod,
)
from ansible_collections.stratdata.pi_cluster.plugins.module_utils.assessment.storage import (
    multi_attach_events,
    volume_usage,
)
from ansible_collections.stratdata.pi_cluster.plugins.module_utils.assessment.workloads import (
    resolve_components,
    selector_matches,
)

class _Context(object):
    """What every check needs: options, parsed pods, volume usage, and pods already explained."""

    def __init__(self, state, options):
        self.state = state
        self.options = options
        now = parse_time(options.get("now")) or datetime.now(timezone.utc)
        self.now = now
        stuck_after = int(options.get("stuck_after_seconds") or 0)
        self.pods = [summarize_pod(p, now, stuck_after) for p in objects(state.get("pods"))]
        self.task_pods = [summarize_pod(p, now, stuck_after) for p in objects(state.get("task_pods"))]
        self.events = objects(state.get("events"))
        self.pvcs = objects(state.get("pvcs"))
        self.pvs = objects(state.get("pvs"))
        self.statefulsets = objects(state.get("statefulsets"))
        self.deployments = objects(state.get("deployments"))
        self.backups = objects(state.get("backups"))
        self.ingresses = objects(state.get("ingresses"))
        self.secrets = objects(state.get("secrets"))
        self.certificates = objects(state.get("certificates"))
        self.clusterissuers = objects(state.get("clusterissuers"))
        self.issuers = objects(state.get("issuers"))
        self.schedules = objects(state.get("schedules"))
        self.usage, self.by_volume = volume_usage(self.pods, self.pvcs, self.pvs)
        self.multi_attach = multi_attach_events(self.events)
        self.explained = {}  # pod ref -> finding id
        self.pod_by_ref = dict((p["ref"], p) for p in self.pods)
        self.components = resolve_components(options)
        self.component_of = {}
        for component in self.components:
            for selector in component["selectors"]:
                for pod in self.pods:
                    if selector_matches(selector, pod):
                        self.component_of.setdefault(pod["ref"], component)

    def pod(self, namespace, name):
        return self.pod_by_ref.get("%s/%s" % (namespace, name))

    def explain(self, pod_refs, fid):
        for pod_ref in pod_refs:
            self.explained.setdefault(pod_ref, fid)
