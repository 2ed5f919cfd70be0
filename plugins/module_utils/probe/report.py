# -*- coding: utf-8 -*-

# Copyright (c) meshops.istio contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Reports of route probes: JUnit XML (CI dashboards, AWX) and JSON."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import tempfile
import xml.etree.ElementTree as ET


def junit_xml(results, summary, suite_name="meshops.istio.route_verify"):
    """Return the JUnit XML document (str) for probe results."""
    suite = ET.Element(
        "testsuite",
        {
            "name": suite_name,
            "tests": str(summary["total"]),
            "failures": str(summary["failed"]),
            "errors": "0",
            "skipped": str(summary["skipped"]),
            "time": "{0:.6f}".format(summary["duration"]),
        },
    )
    for r in results:
        case = ET.SubElement(
            suite,
            "testcase",
            {"name": r["name"], "classname": "route_verify." + r["url"].split("://", 1)[-1].split("/", 1)[0], "time": "{0:.6f}".format(r["duration"])},
        )
        if r["skipped"]:
            ET.SubElement(case, "skipped", {"message": r.get("skip_reason") or "skipped"})
            continue
        if not r["passed"]:
            messages = [f["message"] for f in r["failed_expectations"]] or ["failed"]
            failure = ET.SubElement(
                case,
                "failure",
                {"message": "; ".join(messages), "type": r["failed_expectations"][0]["expectation"] if r["failed_expectations"] else "failed"},
            )
            detail = list(messages)
            if r.get("explanation_text"):
                detail.append("explanation: " + r["explanation_text"])
            failure.text = "\n".join(detail)
        out = ET.SubElement(case, "system-out")
        out.text = "url={0} address={1} status={2} latency={3} attempts={4} time_to_first_success={5}".format(
            r["url"], r["address"], r["status"], r["latency"], r["attempts"], r["time_to_first_success"]
        )
    suites = ET.Element(
        "testsuites",
        {"tests": suite.get("tests"), "failures": suite.get("failures"), "errors": "0", "skipped": suite.get("skipped"), "time": suite.get("time")},
    )
    suites.append(suite)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


def write_report(path, fmt, results, summary):
    """Write the report atomically (temp file + rename in the same directory)."""
    text = junit_xml(results, summary) if fmt == "junit" else json.dumps({"summary": summary, "probes": results}, indent=2, sort_keys=True, default=str) + "\n"
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".route_verify.", dir=directory)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)
        os.rename(tmp, path)
    except Exception:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path
