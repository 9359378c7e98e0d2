# -*- coding: utf-8 -*-
# Copyright: pi-cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Check the role options an inventory sets against the roles' own ``meta/argument_specs.yml``.

The roles' argument specs are the one definition of their options (names, types, choices); preflight reads
them instead of keeping its own list that could drift. A value is checked with the same validator that
``ansible.builtin.validate_argument_spec`` uses (``ArgumentSpecValidator``), but only for the options that are
actually set, and before any role runs, so every problem of every role is reported in one message.

A variable whose name starts with a role's name (``airflow_``, ``k3s_binary_``...) but that no spec declares
is reported too: it is almost always a typo that the role would silently ignore.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import difflib
import os

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

# Keys of an argument_specs option that ArgumentSpecValidator understands (the rest is documentation).
_VALIDATOR_KEYS = ("type", "elements", "choices", "options", "no_log", "aliases")


def load_role_specs(roles_dir, yaml_load):
    """{role: {entry_point: {option: spec}}} for every role under ``roles_dir`` that has argument specs.

    ``yaml_load`` is ``yaml.safe_load`` (passed in so this file has no hard PyYAML import).
    Raises ValueError naming the file when a spec file is unreadable or malformed.
    """
    specs = {}
    if not os.path.isdir(roles_dir):
        raise ValueError("roles directory %s does not exist" % roles_dir)
    for role in sorted(os.listdir(roles_dir)):
        path = os.path.join(roles_dir, role, "meta", "argument_specs.yml")
        if not os.path.isfile(path):
            continue
        try:
            with open(path, "rb") as handle:
                data = yaml_load(handle.read().decode("utf-8"))
        except Exception as exc:
            raise ValueError("cannot read %s: %s" % (path, exc)) from exc
        entries = data.get("argument_specs") if isinstance(data, dict) else None
        if not isinstance(entries, dict):
            raise ValueError("%s has no argument_specs mapping" % path)
        specs[role] = {}
        for entry, body in entries.items():
            options = (body or {}).get("options") or {}
            if not isinstance(options, dict):
                raise ValueError("%s: argument_specs.%s.options is not a mapping" % (path, entry))
            specs[role][entry] = options
    return specs


def _validator_spec(option):
    """The part of an argument_specs option the validator needs; never 'required' or 'default'."""
    spec = dict((key, option[key]) for key in _VALIDATOR_KEYS if key in option)
    if "options" in spec:
        spec["options"] = dict((name, _validator_spec(sub or {})) for name, sub in spec["options"].items())
    return spec


def option_index(specs):
    """{option: [(role, entry_point, spec)]} over every role and entry point."""
    index = {}
    for role in sorted(specs):
        for entry in sorted(specs[role]):
            for name, option in sorted(specs[role][entry].items()):
                index.setdefault(name, []).append((role, entry, option or {}))
    return index


def validate_value(name, value, option):
    """Error messages of ``ArgumentSpecValidator`` for one option value (empty list when valid)."""
    validator = ArgumentSpecValidator({name: _validator_spec(option)})
    result = validator.validate({name: value})
    return [str(error) for error in result.error_messages]


def unknown_option(name, roles, known):
    """A sentence if ``name`` looks like an option of one of ``roles`` (prefix) but no spec declares it."""
    owners = [role for role in roles if name.startswith(role + "_")]
    if not owners or name in known:
        return None
    owner = max(owners, key=len)
    close = difflib.get_close_matches(name, [n for n in known if n.startswith(owner + "_")], n=1)
    return "%s is not a known layer option: no option of role %s (meta/argument_specs.yml) has this name%s" % (
        name, owner, "; did you mean %s?" % close[0] if close else "")


def check_host_options(host_values, specs):
    """Validate the role options set per host.

    ``host_values``: {host: {variable: value}} -- every variable of the host's inventory (group_vars,
    host_vars, extra vars) whose name is an option or starts with a role name; a value that could not be
    evaluated is given as ``EvaluationError(message)``.
    Returns (problems, checked): one sentence per distinct problem, with the hosts it concerns when it
    does not concern all of them; checked = number of (host, option) values validated.
    """
    index = option_index(specs)
    roles = sorted(specs)
    by_problem = {}
    checked = 0
    hosts = sorted(host_values)
    for host in hosts:
        for name, value in sorted(host_values[host].items()):
            messages = []
            if isinstance(value, EvaluationError):
                messages.append("%s cannot be evaluated: %s" % (name, value.message))
            elif name in index:
                checked += 1
                seen = set()
                for role, entry, option in index[name]:
                    errors = validate_value(name, value, option)
                    if any("unable to convert" in error for error in errors):
                        # the choices are named in the hint; "must be one of ... got" would repeat them
                        errors = [error for error in errors if "must be one of" not in error]
                    for error in errors:
                        if error not in seen:
                            seen.add(error)
                            entry_label = "" if entry == "main" else " (entry point %s)" % entry
                            choices = option.get("choices")
                            hint = (" (role %s%s; allowed values: %s)" % (role, entry_label,
                                                                        ", ".join(str(c) for c in choices))
                                    if choices and "must be one of" not in error
                                    else " (role %s%s)" % (role, entry_label))
                            messages.append(error + hint)
            else:
                message = unknown_option(name, roles, index)
                if message:
                    messages.append(message)
            for message in messages:
                by_problem.setdefault(message, []).append(host)
    problems = []
    for message in sorted(by_problem):
        where = by_problem[message]
        if len(where) == len(hosts):
            problems.append(message)
        else:
            problems.append("%s (set for %s)" % (message, ", ".join(where)))
    return problems, checked


def relevant(name, specs_index, roles):
    """Whether an inventory variable is one preflight checks: a role option, or named like one."""
    return name in specs_index or any(name.startswith(role + "_") for role in roles)


class EvaluationError(object):
    """Stands for a variable whose template could not be evaluated (the message says why)."""

    def __init__(self, message):
        self.message = message

    def __eq__(self, other):
        return isinstance(other, EvaluationError) and other.message == self.message

    def __repr__(self):
        return "EvaluationError(%r)" % self.message
