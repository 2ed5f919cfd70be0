# -*- coding: utf-8 -*-

# Copyright (c) meshops.istio contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Istio upgrades: versions, Istio's skew rules, revision names and the plan of an upgrade.

Istio's rules (istio.io: supported releases, in-place and canary upgrade guides):

* the control plane may be at most one minor version ahead of the data plane, and the data
  plane never ahead of the control plane;
* an in-place upgrade goes one minor version at a time;
* a revision-based (canary) upgrade may skip one minor version (1.29 -> 1.31).

``skew_problems`` applies them to what is installed (the control plane's version, every proxy's
version) and the wanted version, before anything changes; each problem names both versions and
what to do. Pure Python.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.meshops.istio.plugins.module_utils.istio import vocab

STRATEGIES = ("InPlace", "RevisionBased")
parse_version = vocab.parse_version


def minor_of(text):
    version = parse_version(text)
    return (version[0], version[1]) if version else None


def show_minor(minor):
    return "%d.%d" % minor


revision_name = vocab.revision_of_version


def skew_problems(strategy, control_plane_version, target_version, proxy_versions):
    """Why an upgrade from what runs to ``target_version`` breaks Istio's rules (empty: allowed).

    ``control_plane_version``: the version istiod runs now (None on a fresh cluster);
    ``proxy_versions``: ``{version: number of proxies}`` of the data plane.
    """
    target = minor_of(target_version)
    if target is None:
        return ["%r is not a version Istio's rules can be checked against" % (target_version,)]
    problems = []
    current = minor_of(control_plane_version)
    if current is not None:
        step = (target[0] - current[0]) * 100 + target[1] - current[1]
        if strategy == "InPlace" and step > 1:
            problems.append(
                "an in-place upgrade goes one minor version at a time: istiod runs %s, %s is wanted; upgrade to %d.%d first, "
                "or use control_plane_update_strategy: RevisionBased (which may skip one minor version)"
                % (show_minor(current), show_minor(target), current[0], current[1] + 1)
            )
        elif strategy == "RevisionBased" and step > 2:
            problems.append(
                "a revision-based upgrade may skip one minor version at most: istiod runs %s, %s is wanted; upgrade to %d.%d first"
                % (show_minor(current), show_minor(target), current[0], current[1] + 2)
            )
        if step < -1:
            problems.append("a downgrade goes one minor version at a time: istiod runs %s, %s is wanted" % (show_minor(current), show_minor(target)))
    for version, count in sorted((proxy_versions or {}).items(), key=lambda item: str(item[0])):
        proxy = minor_of(version)
        if proxy is None:
            continue
        if proxy > target:
            problems.append(
                "%d prox%s run %s, newer than the wanted control plane %s: the data plane may never be ahead of the control plane"
                % (count, "y" if count == 1 else "ies", version, show_minor(target))
            )
        elif strategy == "InPlace" and (target[0] - proxy[0]) * 100 + target[1] - proxy[1] > 1:
            problems.append(
                "%d prox%s run %s, more than one minor version behind %s: restart them onto %d.%d first (the control plane may be "
                "one minor version ahead of the data plane at most)"
                % (count, "y" if count == 1 else "ies", version, show_minor(target), target[0], target[1] - 1)
            )
    return problems


def revision_in_use(revision, tags, default_revision, namespaces, pods, gateway_revisions=()):
    """What still references a revision (the Sail Operator's rules); empty: it can go.

    ``tags``: ``{tag: revision}``; ``namespaces``: ``[(name, labels)]``; ``pods``:
    ``[(namespace/name, phase, annotations, labels)]`` with the namespace's labels known through
    ``namespaces``; ``gateway_revisions``: ``[(release, revision or tag)]``.
    """
    label = vocab.revision_label(revision)
    tag_names = set(tag for tag, target in tags.items() if target == label)
    selectors = set([label]) | tag_names
    why = []
    for tag in sorted(tag_names):
        why.append("revision tag %s points at it" % tag)
    if default_revision == label:
        why.append("it is the default revision (istiod-default-validator)")
    labelled = {}
    for name, given in namespaces:
        labels = given or {}
        if labels.get(vocab.LABEL_INJECTION) == "enabled":
            labelled[name] = vocab.DEFAULT_REVISION
        elif labels.get(vocab.LABEL_REV):
            labelled[name] = labels[vocab.LABEL_REV]
    for name, selected in sorted(labelled.items()):
        if selected in selectors:
            why.append("namespace %s selects %s" % (name, selected))
    for pod, phase, annotations, labels in pods:
        if phase == "Succeeded":
            continue
        injected = (annotations or {}).get(vocab.LABEL_REV)
        namespace = pod.split("/", 1)[0]
        if injected == label or (injected is None and namespace not in labelled and (labels or {}).get(vocab.LABEL_REV) in selectors):
            why.append("pod %s runs a proxy of it" % pod)
    for release, selected in gateway_revisions:
        if selected in selectors:
            why.append("gateway release %s selects %s" % (release, selected))
    return why


def namespaces_to_relabel(namespaces, names, selected):
    """Which of ``names`` do not select ``selected`` yet (``istio.io/rev``), or still carry
    ``istio-injection``, which Istio's webhooks honour before ``istio.io/rev``.
    ``namespaces``: ``[{name, labels}]`` of the labelled namespaces."""
    labels = dict((item["name"], item.get("labels") or {}) for item in namespaces or [])
    out = []
    for name in names or []:
        given = labels.get(name, {})
        if given.get(vocab.LABEL_REV) != selected or vocab.LABEL_INJECTION in given:
            out.append(name)
    return out
