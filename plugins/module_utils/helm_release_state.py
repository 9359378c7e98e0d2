# -*- coding: utf-8 -*-
# Copyright: pi-cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What to do with a Helm release before installing it, decided from ``helm history -o json``.

kubernetes.core.helm compares only values, chart and appVersion, never the release status: a first
install that timed out stays ``failed`` and every re-run reports ok; an interrupted run leaves
``pending-install`` and every re-run fails "another operation (install/upgrade/rollback) is in progress".
``decide`` reads the history (``helm history RELEASE -n NS -o json``: a list of
``{"revision", "updated", "status", "chart", "app_version", "description"}``, oldest first) and returns
one decision with a message that says what is done and why:

``install``    no history: a new install.
``upgrade``    the newest revision is ``deployed`` (or ``superseded``): the normal upgrade (no-op when
               nothing changed).
``rollback``   ``failed`` after an earlier good revision, or stuck in ``pending-upgrade`` /
               ``pending-rollback``: ``helm rollback`` to the last good revision, then an ATOMIC upgrade
               (a new failure rolls itself back instead of staying ``failed``).
``reinstall``  ``failed`` or ``pending-install`` without any good revision, ``uninstalling`` or
               ``uninstalled``: ``helm uninstall``, then install.
``fail``       a status this code does not know (the message names it); nothing is changed.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

# Release statuses of Helm 3 (pkg/release/status.go).
GOOD = ("deployed", "superseded")
PENDING = ("pending-install", "pending-upgrade", "pending-rollback")
KNOWN = GOOD + PENDING + ("failed", "uninstalling", "uninstalled", "unknown")
DECISIONS = ("install", "upgrade", "rollback", "reinstall", "fail")


class HistoryError(ValueError):
    """The history is not the shape ``helm history -o json`` prints."""


def normalise(history):
    """Validate and sort ``helm history -o json`` entries (a list of dicts) by revision, oldest first."""
    if history is None:
        return []
    if not isinstance(history, list):
        raise HistoryError("helm history -o json must be a list, got %s" % type(history).__name__)
    entries = []
    for index, entry in enumerate(history):
        if not isinstance(entry, dict):
            raise HistoryError("history[%d] is not an object: %r" % (index, entry))
        try:
            revision = int(entry["revision"])
        except (KeyError, TypeError, ValueError):
            raise HistoryError("history[%d] has no integer revision: %r" % (index, entry)) from None
        status = entry.get("status")
        if not isinstance(status, str) or not status:
            raise HistoryError("history[%d] (revision %d) has no status" % (index, revision))
        entries.append(dict(entry, revision=revision, status=status.lower()))
    return sorted(entries, key=lambda item: item["revision"])


def _describe(entry):
    text = "revision %d (%s, chart %s" % (entry["revision"], entry["status"], entry.get("chart") or "?")
    if entry.get("description"):
        text += ': "%s"' % str(entry["description"]).strip()
    return text + ")"


def decide(release, namespace, history):
    """Return ``dict(decision, message, status, revision, rollback_revision, atomic)`` for one release.

    ``history``: parsed ``helm history -o json`` (``[]``/``None`` when helm says the release is not found).
    """
    entries = normalise(history)
    name = "Helm release %s/%s" % (namespace, release)
    result = dict(decision="install", status=None, revision=None, rollback_revision=None, atomic=False)
    if not entries:
        result["message"] = "%s is not installed: installing it." % name
        return result
    latest = entries[-1]
    status = latest["status"]
    result.update(status=status, revision=latest["revision"])
    good = [entry for entry in entries[:-1] if entry["status"] in GOOD]
    last_good = good[-1] if good else None
    if status in GOOD:
        result.update(decision="upgrade", message="%s is %s at revision %d: upgrading (no change when the chart and "
                                                 "values are the same)." % (name, status, latest["revision"]))
    elif status == "failed" and last_good is not None:
        result.update(decision="rollback", rollback_revision=last_good["revision"], atomic=True,
                      message="%s is failed at %s: rolling back to revision %d, the last one that deployed, then "
                              "upgrading atomically (a new failure rolls back instead of staying failed)."
                              % (name, _describe(latest), last_good["revision"]))
    elif status == "failed":
        result.update(decision="reinstall",
                      message="%s failed its first install (%s) and never deployed: uninstalling it, then installing "
                              "it again." % (name, _describe(latest)))
    elif status in ("pending-upgrade", "pending-rollback") and last_good is not None:
        result.update(decision="rollback", rollback_revision=last_good["revision"], atomic=True,
                      message="%s is stuck in %s at %s (an interrupted run): rolling back to revision %d, then "
                              "upgrading atomically." % (name, status, _describe(latest), last_good["revision"]))
    elif status in PENDING:
        result.update(decision="reinstall",
                      message="%s is stuck in %s at %s (an interrupted run) with no revision that deployed: "
                              "uninstalling it, then installing it again." % (name, status, _describe(latest)))
    elif status in ("uninstalling", "uninstalled"):
        result.update(decision="reinstall",
                      message="%s is %s at %s: removing what is left of it, then installing it again."
                              % (name, status, _describe(latest)))
    else:
        result.update(decision="fail",
                      message="%s has status %s at %s, which this collection does not know how to heal: look at "
                              "`helm history %s -n %s` and `helm status %s -n %s`, fix it by hand, then re-run."
                              % (name, status, _describe(latest), release, namespace, release, namespace))
    return result
