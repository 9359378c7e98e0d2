#!/usr/bin/env python3
"""Check that every key a rendered values file sets exists in a Helm chart's values.yaml.

Development helper (needs a chart checked out somewhere, never committed):

    python3 scripts/chart_keys.py check  build/rendered/airflow.values.yaml /tmp/charts/airflow-1.18.0
    python3 scripts/chart_keys.py record build/rendered/airflow.values.yaml /tmp/charts/airflow-1.18.0 \\
        > tests/data/chart_keys/airflow-1.18.0.txt

A key path is accepted when the chart's values.yaml has it, or when it lies below a chart value
that is an empty map/null (free-form: annotations, resources, nodeSelector ...), or below a path
listed in FREE_FORM (airflow.cfg sections, subchart values documented in the subchart). Lists are
leaves. `record` prints the sorted key paths of the values file that the chart accepts: the
offline tests compare rendered values against these small recorded lists.
"""

import json
import sys
from pathlib import Path

import yaml

# Paths below which a chart accepts arbitrary keys although its values.yaml shows examples.
FREE_FORM = {
    "airflow": ["config", "postgresql", "global"],
    "postgresql": ["global"],
    "velero": [],
    "longhorn": [],
    "nfs-subdir-external-provisioner": [],
}


def key_paths(data, prefix=()):
    """Yield the dotted key paths of the leaves of a mapping (lists and scalars are leaves)."""
    if isinstance(data, dict) and data:
        for key, value in data.items():
            yield from key_paths(value, prefix + (str(key),))
    else:
        yield prefix


def in_schema(path, schema):
    """Whether values.schema.json declares the key path (through "properties")."""
    node = schema
    for key in path:
        props = node.get("properties") if isinstance(node, dict) else None
        if not props or key not in props:
            return False
        node = props[key]
    return True


def accepted(path, chart_values, free_form, schema=None, templates=""):
    """Whether the chart accepts this key path (values.yaml, values.schema.json or a template)."""
    dotted = ".".join(path)
    if any(dotted == f or dotted.startswith(f + ".") for f in free_form):
        return True
    if schema and in_schema(path, schema):
        return True
    if (".Values.%s" % dotted) in templates:
        return True
    node = chart_values
    for key in path:
        if not isinstance(node, dict):
            return False
        if key not in node:
            return False
        node = node[key]
        if node is None or node == {}:
            return True  # free-form map (or null placeholder) in the chart
    return True


def chart_name(chart_dir):
    meta = yaml.safe_load((Path(chart_dir) / "Chart.yaml").read_text())
    return meta["name"]


def main(argv):
    if len(argv) != 4 or argv[1] not in ("check", "record"):
        print(__doc__, file=sys.stderr)
        return 2
    mode, values_file, chart_dir = argv[1:]
    values = yaml.safe_load(Path(values_file).read_text()) or {}
    chart_values = yaml.safe_load((Path(chart_dir) / "values.yaml").read_text()) or {}
    free_form = FREE_FORM.get(chart_name(chart_dir), [])
    schema_file = Path(chart_dir) / "values.schema.json"
    schema = json.loads(schema_file.read_text()) if schema_file.exists() else None
    templates = "\n".join(t.read_text(errors="replace") for t in sorted((Path(chart_dir) / "templates").rglob("*"))
                          if t.is_file())
    paths = sorted(set(".".join(p) for p in key_paths(values)))
    unknown = [p for p in paths if not accepted(tuple(p.split(".")), chart_values, free_form, schema, templates)]
    if mode == "record":
        if unknown:
            print("unknown keys, not recorded: %s" % ", ".join(unknown), file=sys.stderr)
            return 1
        print("\n".join(paths))
        return 0
    for p in unknown:
        print("UNKNOWN %s" % p)
    print("%s: %d key paths, %d unknown to %s" % (values_file, len(paths), len(unknown), chart_dir))
    return 1 if unknown else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
