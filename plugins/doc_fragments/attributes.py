# -*- coding: utf-8 -*-

# Copyright (c) meshops.istio contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # Standard fragment: describes the attributes; use with one of the fragments below.
    DOCUMENTATION = r"""
options: {}
attributes:
  check_mode:
    description: Can run in C(check_mode) and return changed status prediction without modifying target.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in C(check_mode)), when in diff mode.
  platform:
    description: Target OS/families that can be operated against.
"""

    # For modules that only read: they run fully in check mode and never report a change.
    INFO_MODULE = r"""
options: {}
attributes:
  check_mode:
    support: full
    details:
      - This action does not modify state.
  diff_mode:
    support: N/A
    details:
      - This action does not modify state.
"""

    # For modules that run on the controller (or any POSIX host with Python) and talk to the
    # cluster API or to gateways over the network.
    PLATFORM_ANY = r"""
options: {}
attributes:
  platform:
    support: full
    platforms: posix
    details:
      - Runs where the task runs, usually the controller with a local connection; the
        gateway address and the cluster API must be reachable from there.
"""
