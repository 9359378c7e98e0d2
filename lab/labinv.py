#!/usr/bin/env python3
"""Helpers for lab/lab.sh: apt mirror discovery and the generated lab inventory.

    labinv.py mirror [SUITE]          print the Debian mirror URI serving SUITE (default bookworm)
    labinv.py sources SUITE           print a deb822 sources file for the image (main, SUITE,
                                      SUITE-updates, SUITE-security, as the machine has them)
    labinv.py hosts SRC               print the host names of inventory SRC, one per line
    labinv.py lab-var NAME            print variable NAME of inventory/lab/group_vars/all/zz_lab.yml
    labinv.py var NAME                print variable NAME of the real group_vars/all/main.yml (literal)
    labinv.py addresses SRC SUBNET    print "NAME IP" per host: a fixed lab address in SUBNET that keeps
                                      the last octet of the host's real ansible_host (a DHCP reservation
                                      stand-in), else .10 + the host's index
    labinv.py write SRC OUT --key K --network N --subnet S --gateway G [--partial] --address NAME=IP...
                                      write the lab inventory OUT with the groups of SRC

The mirror is read from the machine's apt sources (/etc/apt/sources.list and
/etc/apt/sources.list.d/*.sources|*.list); nothing is hard-coded.
"""

from __future__ import annotations

import argparse
import glob
import os
import sys
from pathlib import Path

APT_DIR = Path(os.environ.get("LAB_APT_DIR", "/etc/apt"))
LAB_VARS = Path(__file__).resolve().parent.parent / "inventory" / "lab" / "group_vars" / "all" / "zz_lab.yml"

# Used only while inventory/hosts.yml does not exist yet (same hosts and groups as the contract).
FALLBACK_INVENTORY = {
    "all": {
        "children": {
            "k3s_cluster": {
                "children": {
                    "k3s_server": {"hosts": {"pi-master": {}}},
                    "k3s_agents": {"hosts": {f"pi-worker-0{i}": {} for i in range(2, 8)}},
                },
            },
            "nfs_server": {"hosts": {"pi-master": {}}},
            "longhorn_nodes": {"hosts": {f"pi-worker-0{i}": {} for i in range(2, 8)}},
        },
    },
}


def _apt_entries() -> list[dict[str, list[str]]]:
    """Every enabled `deb` entry of the machine's apt sources as {types, uris, suites, components}."""
    entries: list[dict[str, list[str]]] = []
    files = [APT_DIR / "sources.list"] + sorted(Path(p) for p in glob.glob(str(APT_DIR / "sources.list.d" / "*")))
    for path in files:
        if not path.is_file():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        if path.suffix == ".sources":
            for para in text.split("\n\n"):
                fields: dict[str, str] = {}
                key = None
                for line in para.splitlines():
                    if not line.strip() or line.lstrip().startswith("#"):
                        continue
                    if line[0] in " \t" and key:
                        fields[key] += " " + line.strip()
                        continue
                    key, _, value = line.partition(":")
                    key = key.strip().lower()
                    fields[key] = value.strip()
                if fields.get("enabled", "yes").lower() == "no":
                    continue
                entries.append({k: fields.get(k, "").split() for k in ("types", "uris", "suites", "components")})
        elif path.name == "sources.list" or path.suffix == ".list":
            for line in text.splitlines():
                words = line.split("#", 1)[0].split()
                if len(words) < 3 or words[0] != "deb":
                    continue
                words = _strip_options(words)
                if len(words) < 3:
                    continue
                entries.append({"types": ["deb"], "uris": [words[1]], "suites": [words[2]], "components": words[3:]})
    return [e for e in entries if "deb" in e["types"]]


def _strip_options(words: list[str]) -> list[str]:
    """Drop a one-line entry's `[ option=value ... ]` block."""
    out, inside = [], False
    for word in words:
        if word.startswith("["):
            inside = True
        if not inside:
            out.append(word)
        if word.endswith("]"):
            inside = False
    return out


def mirror_for(suite: str) -> str:
    """URI of the machine's apt source serving SUITE main. A suite the machine does not use (trixie on
    a bookworm machine) comes from the same Debian mirror: the source of another suite of the same
    kind (`-security` with `-security`, the others with the others)."""
    entries = [e for e in _apt_entries() if "main" in e["components"] and e["uris"]]
    for entry in entries:
        if suite in entry["suites"]:
            return entry["uris"][0].rstrip("/")
    security = suite.endswith("-security")
    for entry in entries:
        if any(s.endswith("-security") == security for s in entry["suites"]):
            return entry["uris"][0].rstrip("/")
    raise SystemExit(f"labinv: no enabled apt source serves '{suite} main' in {APT_DIR}")


def sources_for(suite: str) -> str:
    """deb822 text for the image: the machine's URIs for SUITE, SUITE-updates and SUITE-security."""
    stanzas = []
    known = {s for e in _apt_entries() if "main" in e["components"] for s in e["suites"]}
    for suites in ([suite, f"{suite}-updates"], [f"{suite}-security"]):
        # a suite the machine does not use: the kinds (-updates, -security) the machine has for its own
        found = [s for s in suites if s in known or any(k.endswith(s[len(suite) :]) for k in known if "-" in k)]
        if suite in suites:
            found = [suite, *[s for s in found if s != suite]]
        if not found:
            continue
        stanzas.append(
            f"Types: deb\nURIs: {mirror_for(found[0])}\nSuites: {' '.join(found)}\nComponents: main\n"
            "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
        )
    return "\n".join(stanzas)


def load_inventory(src: str) -> dict:
    import yaml  # noqa: PLC0415 - only the inventory commands need PyYAML

    path = Path(src)
    if not path.is_file():
        print(f"labinv: {src} does not exist yet; using the contract's default hosts and groups", file=sys.stderr)
        return FALLBACK_INVENTORY
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if "all" not in data:
        data = {"all": {"children": data}}
    return data


def iter_groups(group: dict):
    """Yield every group dict below (and including) `group`."""
    yield group
    for child in (group.get("children") or {}).values():
        if isinstance(child, dict):
            yield from iter_groups(child)


def host_names(inv: dict) -> list[str]:
    names: list[str] = []
    for group in iter_groups(inv["all"]):
        for name in group.get("hosts") or {}:
            if name not in names:
                names.append(name)
    return names


def real_host_vars(src: str, inv: dict, name: str) -> dict:
    """Variables of host NAME in the real inventory: inline ones, then inventory/host_vars/NAME.yml."""
    import yaml  # noqa: PLC0415

    hv: dict = {}
    for group in iter_groups(inv["all"]):
        hv.update(((group.get("hosts") or {}).get(name)) or {})
    host_vars_dir = Path(src).parent / "host_vars"
    for candidate in (host_vars_dir / f"{name}.yml", host_vars_dir / f"{name}.yaml"):
        if candidate.is_file():
            hv.update(yaml.safe_load(candidate.read_text(encoding="utf-8")) or {})
    return hv


def lab_addresses(src: str, subnet: str) -> dict[str, str]:
    """Stable lab address per host, so a restarted container keeps its address (as a Pi keeps its
    DHCP reservation): the real address's host part when it fits the lab subnet, else .10 + index."""
    import ipaddress  # noqa: PLC0415

    net = ipaddress.ip_network(subnet, strict=False)
    inv = load_inventory(src)
    reserved = {net.network_address, net.network_address + 1, net.broadcast_address}
    used: set = set()
    out: dict[str, str] = {}
    for index, name in enumerate(host_names(inv)):
        candidates = []
        real = str(real_host_vars(src, inv, name).get("ansible_host", ""))
        try:
            host_part = int(ipaddress.ip_address(real)) & 0xFF
            candidates.append(net.network_address + host_part)
        except ValueError:
            pass
        candidates += [net.network_address + 10 + index + k for k in range(0, 200)]
        for ip in candidates:
            if ip in net and ip not in reserved and ip not in used:
                used.add(ip)
                out[name] = str(ip)
                break
        else:
            raise SystemExit(f"labinv: no free address for {name} in {subnet}")
    return out


# The only variables the lab inventory adds to or changes from the real one (tests/unit/test_lab_tooling.py
# compares `ansible-inventory --list` of both): per host, what physically differs...
LAB_HOST_VARS = frozenset(
    {"ansible_host", "ansible_ssh_private_key_file", "ansible_ssh_common_args", "ansible_host_key_checking"}
)
# ...for all hosts, the podman network and throwaway key (lab_*), and inventory/lab/group_vars/all/zz_lab.yml.
LAB_GROUP_VARS = frozenset({"lab_network", "lab_network_subnet", "lab_network_gateway", "lab_ssh_key"})


def write_inventory(args: argparse.Namespace) -> None:
    import yaml  # noqa: PLC0415

    inv = load_inventory(args.src)
    addresses = dict(pair.split("=", 1) for pair in args.addresses)
    # ControlPath: ansible puts its own ControlPath first (ssh takes the first value), so this one
    # serves testinfra, whose ssh backend otherwise opens one connection per command.
    control_path = str(Path(args.key).parent / "cp" / "%C")
    ssh_args = (
        f"-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o ControlPath={control_path}"
    )
    missing = [h for h in host_names(inv) if h not in addresses]
    if missing and not args.partial:
        raise SystemExit(f"labinv: no lab address for {', '.join(missing)}")
    merged: dict[str, dict] = {}
    for name in host_names(inv):
        if name not in addresses:
            continue
        # Host variables of the real inventory (inline and inventory/host_vars/NAME.yml) are kept; only
        # what physically differs is set (LAB_HOST_VARS): the address and the SSH key and options.
        # The login user, interpreter etc. come from the real group_vars, as on the real Pis.
        hv = real_host_vars(args.src, inv, name)
        hv.update(
            {
                "ansible_host": addresses[name],
                "ansible_ssh_private_key_file": args.key,
                "ansible_ssh_common_args": ssh_args,
                # Each lab create makes new host keys. The -o options above cover OpenSSH; Mitogen's
                # ssh puts its own StrictHostKeyChecking first (from this variable), so say it here too.
                "ansible_host_key_checking": False,
            }
        )
        merged[name] = hv

    def rewrite(group: dict, seen: set[str]) -> dict:
        out = {k: v for k, v in group.items() if k not in ("hosts", "children")}
        if group.get("hosts"):
            out["hosts"] = {}
            for name in group["hosts"]:
                if name not in merged:
                    continue
                out["hosts"][name] = None if name in seen else merged[name]
                seen.add(name)
        if group.get("children"):
            out["children"] = {k: rewrite(v or {}, seen) for k, v in group["children"].items()}
        return out

    lab = rewrite(inv["all"], set())
    lab["vars"] = {
        **(lab.get("vars") or {}),
        "lab_network": args.network,
        "lab_network_subnet": args.subnet,
        "lab_network_gateway": args.gateway,
        "lab_ssh_key": args.key,
    }
    lab = {"vars": lab.pop("vars"), **lab}
    header = (
        f"# Generated by lab/lab.sh up from {args.src} (groups) and `podman inspect` (addresses).\n"
        "# Do not edit, do not commit: `lab/lab.sh down` removes it.\n"
    )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    # width 120: yamllint-clean (long ssh args fold onto a second line)
    body = yaml.safe_dump({"all": lab}, sort_keys=False, default_flow_style=False, width=120)
    tmp.write_text(header + body, encoding="utf-8")
    tmp.replace(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("mirror")
    p.add_argument("suite", nargs="?", default="bookworm")
    p = sub.add_parser("sources")
    p.add_argument("suite", nargs="?", default="bookworm")
    p = sub.add_parser("hosts")
    p.add_argument("src")
    p = sub.add_parser("lab-var")
    p.add_argument("name")
    p = sub.add_parser("var")
    p.add_argument("name")
    p = sub.add_parser("addresses")
    p.add_argument("src")
    p.add_argument("subnet")
    p = sub.add_parser("write")
    p.add_argument("src")
    p.add_argument("out")
    p.add_argument("--key", required=True)
    p.add_argument("--network", required=True)
    p.add_argument("--subnet", required=True)
    p.add_argument("--gateway", required=True)
    p.add_argument("--partial", action="store_true", help="drop the hosts that have no address")
    p.add_argument("--address", dest="addresses", action="append", default=[], metavar="NAME=IP")
    args = parser.parse_args()
    if args.cmd == "mirror":
        print(mirror_for(args.suite))
    elif args.cmd == "sources":
        print(sources_for(args.suite), end="")
    elif args.cmd == "lab-var":
        import yaml  # noqa: PLC0415

        lab_vars = yaml.safe_load(LAB_VARS.read_text(encoding="utf-8")) or {}
        if args.name not in lab_vars:
            raise SystemExit(f"labinv: {args.name} is not set in {LAB_VARS}")
        print(lab_vars[args.name])
    elif args.cmd == "var":
        import yaml  # noqa: PLC0415

        real = yaml.safe_load((LAB_VARS.parent / "main.yml").read_text(encoding="utf-8")) or {}
        if args.name not in real:
            raise SystemExit(f"labinv: {args.name} is not set in {LAB_VARS.parent / 'main.yml'}")
        print(real[args.name])
    elif args.cmd == "addresses":
        for name, ip in lab_addresses(args.src, args.subnet).items():
            print(name, ip)
    elif args.cmd == "hosts":
        print("\n".join(host_names(load_inventory(args.src))))
    else:
        write_inventory(args)


if __name__ == "__main__":
    main()
