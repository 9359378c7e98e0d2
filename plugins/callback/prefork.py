# -*- coding: utf-8 -*-
# Copyright: pi-cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Prepare the controller before its task workers fork: Jinja plugins loaded once, long-lived objects frozen."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: prefork
type: aggregate
short_description: Prepare the controller before its task workers fork (plugins loaded once, long-lived objects frozen)
description:
  - ansible-core runs every task of every host in a worker process forked from the controller. A worker that
    templates anything with a filter or test loads every non-collection filter and test plugin (C(ansible.builtin)
    and the configured plugin paths) and imports the collection plugins it names, and throws them away when it
    ends. The controller itself never templates a filter before the first fork, so nothing is inherited.
  - This callback loads them in the controller at the start of each play; the workers inherit the loaded plugins
    instead of importing them again. On the seven-host lab this halves the controller's CPU time of a no-op
    C(site.yml) (see README, Benchmarks).
  - At the same moment it moves the objects alive in the controller (playbook, inventory, variables, plugins) to
    Python's permanent generation (C(gc.freeze())), so that garbage collections in the workers do not touch, and
    thereby copy, their memory pages. Cycles among those objects that die later are not collected before the run
    ends; an C(ansible-playbook) run is short-lived, so this costs a little memory at most.
  - It changes no result and prints nothing. Without it every run behaves the same, only slower.
version_added: 0.1.0
author: pi-cluster contributors
requirements:
  - enable it in ansible.cfg (C(callbacks_enabled = stratdata.pi_cluster.prefork)); the project's
    ansible.cfg does
"""

import gc
import importlib
import pkgutil

from ansible.plugins.callback import CallbackBase
from ansible.plugins.loader import filter_loader, test_loader

# ansible_collections.<namespace>.<name>.plugins.callback.prefork
_COLLECTION = ".".join(__name__.split(".")[1:3]) if __name__.startswith("ansible_collections.") else ""


def _collection_plugin_names(kind):
    """Yield the FQCN of every filter (kind=filter) or test (kind=test) this collection ships."""
    package = "ansible_collections.%s.plugins.%s" % (_COLLECTION, kind)
    try:
        pkg = importlib.import_module(package)
    except ImportError:
        return
    for info in pkgutil.iter_modules(pkg.__path__):
        try:
            module = importlib.import_module("%s.%s" % (package, info.name))
        except Exception:  # pylint: disable=broad-except  # the task that uses a broken plugin reports it
            continue
        holder = getattr(module, "FilterModule" if kind == "filter" else "TestModule", None)
        if holder is None:
            continue
        plugins = holder().filters() if kind == "filter" else holder().tests()
        for name in plugins:
            yield "%s.%s" % (_COLLECTION, name)


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "stratdata.pi_cluster.prefork"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super(CallbackModule, self).__init__(*args, **kwargs)
        self._collection_loaded = False

    def v2_playbook_on_play_start(self, play):
        # Every play: a role with its own filter_plugins directory, loaded at run time by include_role, empties
        # the loaders' caches; while they are full, all() returns at once.
        for loader in (filter_loader, test_loader):
            for _plugin in loader.all():
                pass
        # Once: the collection's plugin modules stay imported (sys.modules) for the whole run.
        if _COLLECTION and not self._collection_loaded:
            self._collection_loaded = True
            for loader, kind in ((filter_loader, "filter"), (test_loader, "test")):
                for fqcn in _collection_plugin_names(kind):
                    try:
                        loader.get(fqcn)
                    except Exception as exc:  # pylint: disable=broad-except  # the task that uses it reports it
                        self._display.vvvv("prefork: %s not preloaded: %s" % (fqcn, exc))
        # What is alive now (playbook, inventory, variables, the plugins above) lives until the run ends: out of
        # the collector's reach, a worker's garbage collections no longer write to those objects, which would
        # copy their memory pages into every fork (Python's gc.freeze() documentation describes this use).
        gc.freeze()
