#!/usr/bin/env python3
"""Write each role's README.md from its meta/argument_specs.yml (the single source of the docs).

    tools/docs/role_readmes.py          # rewrite roles/*/README.md
    tools/docs/role_readmes.py --check  # exit 1 and name the READMEs that are out of date

The README lists every entry point with its description and a table of its options, nested
options included (as `parent[].child`), followed by the role's example from the README section
in this script's EXAMPLES table.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]

EXAMPLES = {
    "control_plane": """- name: Install Istio 1.31.0 from the public charts, refusing unregistered hosts
  hosts: clusters
  roles:
    - role: meshops.istio.control_plane
      vars:
        control_plane_outbound_traffic_policy: REGISTRY_ONLY""",
    "gateways": """- name: An internal ingress gateway with three replicas, and the egress gateway
  hosts: clusters
  roles:
    - role: meshops.istio.gateways
      vars:
        gateways_list:
          - name: istio-ingressgateway
            istio_label: ingressgateway
            replicas: 3
            service:
              type: LoadBalancer
              annotations: {service.beta.kubernetes.io/aws-load-balancer-internal: "true"}
          - name: istio-egressgateway
            istio_label: egressgateway
            service: {type: ClusterIP}""",
    "httpbin": """- name: Two replicas of httpbin in the httpbin namespace
  hosts: clusters
  roles:
    - role: meshops.istio.httpbin
      vars:
        httpbin_replicas: 2""",
    "traffic": """- name: Canary 90/10 on shop.example.com over HTTPS, and prune routes removed from the inventory
  hosts: clusters
  roles:
    - role: meshops.istio.traffic
      vars:
        traffic_namespace: shop
        traffic_prune: true
        traffic_ingress_routes:
          - name: shop
            hosts: [shop.example.com]
            gateway: {name: shop-gateway, protocol: HTTPS, tls: {credential_name: shop-cert}}
            http:
              - match: [{prefix: /}]
                route:
                  - {host: shop, port: 8080, subset: v1, weight: 90}
                  - {host: shop, port: 8080, subset: v2, weight: 10}
                timeout: 5s
                retries: {attempts: 2, per_try_timeout: 2s, retry_on: 5xx}
        traffic_egress_routes: []""",
    "verify": """- name: The reference checks through a kind port mapping, with a JUnit report
  hosts: clusters
  roles:
    - role: meshops.istio.verify
      vars:
        verify_ingress_address: 127.0.0.1:80
        verify_report_path: /tmp/route-verify.xml""",
}


MARKUP = re.compile(r"\b[COVMP]\(([^()]*(?:\([^()]*\)[^()]*)*)\)")


def _markdown(text: str) -> str:
    """Ansible doc markup (C(), O(), V(), M(), P()) as Markdown code spans."""
    return MARKUP.sub(lambda m: "`" + m.group(1).split("#")[0] + "`", text)


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return _markdown(" ".join(str(v) for v in value))
    return _markdown(str(value))


def _cell(value) -> str:
    return _text(value).replace("|", "\\|").replace("\n", " ")


def _default(option: dict) -> str:
    if "default" not in option:
        return ""
    default = option["default"]
    if isinstance(default, (dict, list)):
        return "`" + yaml.safe_dump(default, default_flow_style=True, width=10000).strip() + "`"
    return f"`{default!r}`" if isinstance(default, str) else f"`{default}`"


def _rows(options: dict, prefix: str = "") -> list[str]:
    rows = []
    for name, option in options.items():
        kind = option.get("type", "str")
        if option.get("elements"):
            kind += f" of {option['elements']}"
        if option.get("choices"):
            kind += " (" + ", ".join(f"`{c}`" if c != "" else '`""`' for c in option["choices"]) + ")"
        required = "yes" if option.get("required") else ""
        rows.append(f"| `{prefix}{name}` | {_cell(kind)} | {required} | {_cell(_default(option))} | {_cell(option.get('description'))} |")
        nested = option.get("options")
        if nested:
            marker = "[]." if option.get("type") == "list" else "."
            rows.extend(_rows(nested, f"{prefix}{name}{marker}"))
    return rows


def render(role: str) -> str:
    spec = yaml.safe_load((REPO / "roles" / role / "meta" / "argument_specs.yml").read_text())["argument_specs"]
    main = spec["main"]
    lines = [
        f"# meshops.istio.{role}",
        "",
        "<!-- Generated from meta/argument_specs.yml by tools/docs/role_readmes.py: edit the spec, then run the script. -->",
        "",
        main.get("short_description", ""),
        "",
    ]
    for entry, data in spec.items():
        title = "Options" if entry == "main" else f"Entry point `{entry}` (`tasks_from: {entry}`)"
        lines += [f"## {title}", ""]
        if entry != "main":
            lines += [_markdown(data.get("short_description", "")), ""]
        for paragraph in data.get("description", []) if isinstance(data.get("description"), list) else [data.get("description", "")]:
            lines += [_markdown(paragraph), ""]
        lines += ["| option | type | required | default | description |", "| --- | --- | --- | --- | --- |"]
        lines += _rows(data.get("options", {}))
        lines.append("")
    lines += [
        "## Example",
        "",
        "```yaml",
        EXAMPLES.get(role, f"- hosts: clusters\n  roles:\n    - meshops.istio.{role}"),
        "```",
        "",
        f"`ansible-doc -t role meshops.istio.{role}` prints the same documentation.",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only report READMEs that differ from their argument spec")
    args = parser.parse_args()
    stale = []
    for spec in sorted((REPO / "roles").glob("*/meta/argument_specs.yml")):
        role = spec.parent.parent.name
        readme = spec.parent.parent / "README.md"
        text = render(role)
        if readme.exists() and readme.read_text() == text:
            continue
        if args.check:
            stale.append(str(readme.relative_to(REPO)))
        else:
            readme.write_text(text)
            print(f"wrote {readme.relative_to(REPO)}")
    if stale:
        print("out of date (run tools/docs/role_readmes.py): " + ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
