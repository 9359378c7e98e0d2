#!/usr/bin/env python3
"""Record the value keys a pinned Helm chart declares, from the chart itself (never from our values).

Development helper; the chart comes from its upstream repository and is never committed:

    git -C MIRROR archive COMMIT CHART_PATH | tar -x -C /tmp/charts
    python3 scripts/chart_keys.py record /tmp/charts/CHART_PATH "github.com/OWNER/REPO commit COMMIT, CHART_PATH" \\
        > tests/data/chart_keys/NAME-VERSION.txt
    python3 scripts/chart_keys.py check build/rendered/x.values.yaml tests/data/chart_keys/NAME-VERSION.txt

`record` lists every key path of the chart's values.yaml and values.schema.json, and every `.Values.a.b`
path its templates read; a dependency unpacked under `charts/<name>/` counts under its name (or alias), its
`global.*` keys at the top. A path ending in `.*` is free-form below: an empty map or null in values.yaml
(annotations, resources, nodeSelector ...), or a schema object without "properties" or with
"additionalProperties" set. Lists are leaves. The header names the source (repository, commit, path).
`check` prints the key paths of a rendered values file that the recorded chart does not declare.
"""

import json
import re
import sys
from pathlib import Path

import yaml

VALUES_REF_RE = re.compile(r"\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)")


def leaf_paths(data, prefix=()):
    """Dotted key paths of the leaves of a mapping (lists and scalars are leaves)."""
    if isinstance(data, dict) and data:
        for key, value in data.items():
            yield from leaf_paths(value, prefix + (str(key),))
    else:
        yield ".".join(prefix)


def values_keys(data, prefix=()):
    """(exact paths, free-form prefixes) declared by a chart's values.yaml."""
    exact, free = set(), set()
    if not isinstance(data, dict):
        return exact, free
    for key, value in data.items():
        path = prefix + (str(key),)
        exact.add(".".join(path))
        if value is None or value == {}:
            free.add(".".join(path))
        elif isinstance(value, dict):
            sub_exact, sub_free = values_keys(value, path)
            exact |= sub_exact
            free |= sub_free
    return exact, free


def schema_keys(node, prefix=(), defs=None):
    """(exact paths, free-form prefixes) declared by a values.schema.json node."""
    exact, free = set(), set()
    if not isinstance(node, dict):
        return exact, free
    defs = defs if defs is not None else node.get("definitions", node.get("$defs", {}))
    ref = node.get("$ref", "")
    if ref.startswith("#/"):
        target = defs
        for part in ref.split("/")[2:]:
            target = target.get(part, {}) if isinstance(target, dict) else {}
        node = dict(target, **{k: v for k, v in node.items() if k != "$ref"})
    for combinator in ("allOf", "anyOf", "oneOf"):
        for sub in node.get(combinator, []):
            sub_exact, sub_free = schema_keys(sub, prefix, defs)
            exact |= sub_exact
            free |= sub_free
    props = node.get("properties")
    types = node.get("type", [])
    types = [types] if isinstance(types, str) else types
    # A schema object that lists properties is closed unless it opens itself with additionalProperties
    # (charts ignore keys their templates never read, so an unlisted key is a mistake, not a setting).
    additional = node.get("additionalProperties")
    if prefix and ("object" in types or props is not None) and (not props or additional not in (False, None)):
        free.add(".".join(prefix))
    for key, sub in (props or {}).items():
        path = prefix + (key,)
        exact.add(".".join(path))
        sub_exact, sub_free = schema_keys(sub, path, defs)
        exact |= sub_exact
        free |= sub_free
    return exact, free


def _under(prefix, path):
    return path if path == "global" or path.startswith("global.") else prefix + "." + path


def chart_keys(chart_dir):
    """(exact paths, free-form prefixes) a chart declares, its unpacked subcharts included."""
    chart_dir = Path(chart_dir)
    meta = yaml.safe_load((chart_dir / "Chart.yaml").read_text())
    exact, free = values_keys(yaml.safe_load((chart_dir / "values.yaml").read_text()) or {})
    schema_file = chart_dir / "values.schema.json"
    if schema_file.exists():
        sub_exact, sub_free = schema_keys(json.loads(schema_file.read_text()))
        exact |= sub_exact
        free |= sub_free
    for template in sorted((chart_dir / "templates").rglob("*")):
        if template.is_file():
            for match in VALUES_REF_RE.finditer(template.read_text(errors="replace")):
                parts = match.group(1).lstrip(".").split(".")
                exact |= {".".join(parts[:n]) for n in range(1, len(parts) + 1)}
    # A dependency unpacked under charts/<name>/ takes its values under <alias or name>., except global.*,
    # which Helm shares between a chart and its subcharts.
    for dependency in meta.get("dependencies") or []:
        sub_dir = chart_dir / "charts" / dependency["name"]
        if not (sub_dir / "Chart.yaml").exists():
            continue
        prefix = dependency.get("alias") or dependency["name"]
        exact.add(prefix)
        sub_exact, sub_free = chart_keys(sub_dir)
        exact |= {_under(prefix, path) for path in sub_exact}
        free |= {_under(prefix, path) for path in sub_free}
    return exact, free


def record(chart_dir, source):
    meta = yaml.safe_load((Path(chart_dir) / "Chart.yaml").read_text())
    exact, free = chart_keys(chart_dir)
    lines = [
        "# Value key paths that the %s %s chart declares (values.yaml, values.schema.json, .Values in templates)."
        % (meta["name"], meta["version"]),
        "# Source: %s" % source,
        "# Recorded by scripts/chart_keys.py record from the chart alone; lines ending in .* are free-form below.",
    ]
    lines += sorted(exact | {path + ".*" for path in free})
    return "\n".join(lines) + "\n"


def load_recorded(path):
    """(exact paths, free-form prefixes) of a recorded list."""
    entries = [line.strip() for line in Path(path).read_text().splitlines()
               if line.strip() and not line.startswith("#")]
    return {e for e in entries if not e.endswith(".*")}, [e[:-2] for e in entries if e.endswith(".*")]


def undeclared(values, recorded_path):
    """Key paths of a values mapping that the recorded chart does not declare."""
    exact, free = load_recorded(recorded_path)
    return [path for path in sorted(set(leaf_paths(values)))
            if path not in exact and not any(path.startswith(prefix + ".") for prefix in free)]


def main(argv):
    if len(argv) == 4 and argv[1] == "record":
        sys.stdout.write(record(argv[2], argv[3]))
        return 0
    if len(argv) == 4 and argv[1] == "check":
        unknown = undeclared(yaml.safe_load(Path(argv[2]).read_text()) or {}, argv[3])
        for path in unknown:
            print("UNDECLARED %s" % path)
        print("%s: %d key path(s) the chart does not declare" % (argv[2], len(unknown)))
        return 1 if unknown else 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
