# -*- coding: utf-8 -*-

# Copyright (c) meshops.istio contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""What every input model of meshops.istio shares: one style of validation and of messages.

A model validates a role's inputs and returns every problem at once, each message of the
form ``<item>: <field>: <problem, with the bad value>``; the role prefixes its name. The
shape of an input (keys, types, choices, required keys, list elements) is an Ansible argument
spec (the same dicts a role's ``meta/argument_specs.yml`` holds, which a test compares with
them); ``check_options`` walks a value against it, so unknown keys, wrong types and bad
choices are reported the same way everywhere, with the item and field named.

Pure Python, no Ansible import.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.meshops.istio.plugins.module_utils.istio import vocab

_TYPE_NAMES = {
    "str": "a string",
    "int": "an integer",
    "float": "a number",
    "bool": "true or false",
    "list": "a list",
    "dict": "a mapping",
    "path": "a path",
}


def kind_of(value):
    """A user's word for the type of a value (never a Python class name)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    return "a value of another type"


def show(value, limit=80):
    """The bad value as the user wrote it, shortened."""
    if isinstance(value, str):
        text = "'%s'" % value
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif value is None:
        text = "null"
    elif isinstance(value, (int, float)):
        text = str(value)
    elif isinstance(value, dict):
        text = "{%s}" % ", ".join("%s: %s" % (k, show(v, 30)) for k, v in value.items())
    elif isinstance(value, (list, tuple)):
        text = "[%s]" % ", ".join(show(v, 30) for v in value)
    else:
        text = str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


# What Ansible turns into booleans and numbers when a variable comes as a string (-e key=value).
_BOOL_STRINGS = ("y", "yes", "on", "1", "true", "t", "n", "no", "off", "0", "false", "f")


def convertible(value, type_name):
    """Whether Ansible converts the string ``value`` to ``type_name`` (extra vars are strings)."""
    if not isinstance(value, str):
        return False
    text = value.strip()
    if type_name == "bool":
        return text.lower() in _BOOL_STRINGS
    if type_name == "int":
        return text.lstrip("+-").isdigit()
    if type_name == "float":
        try:
            float(text)
        except ValueError:
            return False
        return True
    return False


def type_ok(value, type_name):
    if type_name in ("str", "path"):
        return isinstance(value, str)
    if type_name == "int":
        return is_int(value)
    if type_name == "float":
        return is_int(value) or isinstance(value, float)
    if type_name == "bool":
        return isinstance(value, bool)
    if type_name == "list":
        return isinstance(value, list)
    if type_name == "dict":
        return isinstance(value, dict)
    return True  # raw


class Problems:
    """Collects messages ``<where>: <field>: <problem>``."""

    def __init__(self):
        self.messages = []

    def add(self, where, field, problem):
        parts = [p for p in (where, field) if p]
        self.messages.append("%s: %s" % (": ".join(parts), problem) if parts else problem)

    def __len__(self):
        return len(self.messages)

    def __bool__(self):
        return bool(self.messages)


def where(variable, index, item):
    """``traffic_ingress_routes[0] (httpbin)``: the list, the index and the item's name."""
    name = item.get("name") if isinstance(item, dict) else None
    if isinstance(name, str) and name:
        return "%s[%d] (%s)" % (variable, index, name)
    return "%s[%d]" % (variable, index)


def join(field, key):
    return "%s.%s" % (field, key) if field else str(key)


def check_options(problems, where_, field, value, options):
    """Check a mapping against argument-spec ``options``: keys, types, choices, required.

    Returns False when ``value`` is not a mapping (nothing below it can be checked).
    """
    if not isinstance(value, dict):
        problems.add(where_, field, "must be a mapping, got %s %s" % (kind_of(value), show(value)))
        return False
    for key in sorted(set(value) - set(options), key=str):
        problems.add(where_, join(field, key), "unknown option (allowed: %s)" % ", ".join(sorted(options)))
    for key, option in options.items():
        sub = join(field, key)
        if key not in value or value[key] is None:
            if option.get("required"):
                problems.add(where_, sub, "is required")
            continue
        check_value(problems, where_, sub, value[key], option)
    return True


def check_value(problems, where_, field, value, option):
    """Check one value against one argument-spec option (recursively)."""
    type_name = option.get("type", "str")
    if not type_ok(value, type_name):
        hint = ""
        if type_name == "list" and isinstance(value, str):
            hint = " (write it as a list: [%s])" % value
        elif type_name == "int" and isinstance(value, str) and value.strip().isdigit():
            hint = " (write the number without quotes)"
        problems.add(where_, field, "must be %s, got %s %s%s" % (_TYPE_NAMES.get(type_name, type_name), kind_of(value), show(value), hint))
        return
    choices = option.get("choices")
    if choices and type_name != "list" and value not in choices:
        problems.add(where_, field, "%s is not one of %s" % (show(value), ", ".join(str(c) for c in choices)))
    if type_name == "list":
        elements = option.get("elements")
        for index, element in enumerate(value):
            sub = "%s[%d]" % (field, index)
            if elements and not type_ok(element, elements):
                problems.add(where_, sub, "must be %s, got %s %s" % (_TYPE_NAMES.get(elements, elements), kind_of(element), show(element)))
                continue
            if choices and element not in choices:
                problems.add(where_, sub, "%s is not one of %s" % (show(element), ", ".join(str(c) for c in choices)))
            if elements == "dict" and option.get("options"):
                check_options(problems, where_, sub, element, option["options"])
    elif type_name == "dict" and option.get("options"):
        check_options(problems, where_, field, value, option["options"])


def check_name(problems, where_, field, value, label=False):
    """A Kubernetes object name (DNS-1123 subdomain) or, with ``label``, a DNS label."""
    if not isinstance(value, str) or not value:
        problems.add(where_, field, "must be a non-empty string, got %s %s" % (kind_of(value), show(value)))
        return False
    pattern, maxlen = (vocab.DNS1123_LABEL, 63) if label else (vocab.DNS1123_SUBDOMAIN, 253)
    if len(value) > maxlen or not pattern.match(value):
        problems.add(
            where_,
            field,
            "%s is not a valid Kubernetes name (lower case letters, digits and '-'%s, at most %d characters)"
            % (show(value), "" if label else " and '.'", maxlen),
        )
        return False
    return True


def check_namespace(problems, where_, field, value):
    return check_name(problems, where_, field, value, label=True)


def check_port(problems, where_, field, value):
    if not is_int(value) or not 1 <= value <= 65535:
        problems.add(where_, field, "%s is not a port number (1-65535)" % show(value))
        return False
    return True


def check_duration(problems, where_, field, value):
    problem = vocab.duration_problem(value)
    if problem:
        problems.add(where_, field, "%s %s" % (show(value), problem))
        return False
    return True


def check_selector(problems, where_, field, value):
    if not isinstance(value, dict) or not value:
        problems.add(where_, field, "must be a non-empty mapping of pod labels, for example {istio: ingressgateway}, got %s" % show(value))
        return
    for key, val in value.items():
        if not isinstance(key, str) or len(key) > 317 or not vocab.LABEL_KEY.match(key):
            problems.add(where_, field, "%s is not a valid label key" % show(key))
        if not isinstance(val, str) or len(val) > 63 or not vocab.LABEL_VALUE.match(val):
            problems.add(where_, join(field, key), "%s is not a valid label value (quote numbers and booleans)" % show(val))


def check_host(problems, where_, field, value, allow_wildcard=True, wildcard_hint=""):
    """An Istio host name: a DNS name, optionally '*.'-prefixed (or '*')."""
    if not isinstance(value, str) or not value:
        problems.add(where_, field, "must be a host name such as httpbin.example.com, got %s %s" % (kind_of(value), show(value)))
        return False
    if "://" in value:
        bare = value.split("://", 1)[1].split("/", 1)[0]
        problems.add(where_, field, "%s is a URL; give the host name only (%s)" % (show(value), bare))
        return False
    if "/" in value:
        problems.add(where_, field, "%s must be a host name without a path or namespace/ prefix" % show(value))
        return False
    if ":" in value:
        problems.add(where_, field, "%s must be a host name without a port (ports are separate fields)" % show(value))
        return False
    if value != value.lower() and vocab.HOSTNAME.match(value.lower()):
        problems.add(where_, field, "%s must be lower case (%s)" % (show(value), value.lower()))
        return False
    if len(value) > 253 or not vocab.HOSTNAME.match(value):
        problems.add(where_, field, "%s is not a valid host name (a lower case DNS name, optionally prefixed with '*.')" % show(value))
        return False
    if not allow_wildcard and "*" in value:
        problems.add(where_, field, "%s: wildcards are not allowed here%s" % (show(value), wildcard_hint))
        return False
    return True


def check_regex(problems, where_, field, value):
    problem = vocab.regex_problem(value)
    if problem:
        problems.add(where_, field, "%s is not a valid regular expression for Istio: %s" % (show(value), problem))
        return False
    return True


def check_revision(problems, where_, field, value):
    """A control plane revision: '' (the default revision) or a DNS label other than 'default'."""
    if value in ("", None):
        return True
    if not isinstance(value, str) or len(value) > 63 or not vocab.DNS1123_LABEL.match(value):
        problems.add(where_, field, "%s is not a revision name (empty, or lower case letters, digits and '-', such as 1-31-0 or canary)" % show(value))
        return False
    if value == vocab.DEFAULT_REVISION:
        problems.add(where_, field, "'default' names the default revision; leave the revision empty instead")
        return False
    return True


def check_version(problems, where_, field, value):
    if not isinstance(value, str) or not vocab.RELEASE_VERSION.match(value):
        problems.add(where_, field, "%s is not a release version such as 1.31.0 (tags like 'latest' cannot be pinned)" % show(value))
        return False
    return True
