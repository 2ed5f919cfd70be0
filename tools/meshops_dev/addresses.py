"""The address plan of the project's own engine and kind cluster (docs/development.md,
"Addresses of the project's own engine and cluster"), in one place for the engine, the node
image and the cluster.

10.213.0.0/16 stays clear of Docker's defaults (172.17-31.x), of kind's pod and service ranges
and of the usual home/office 192.168.x ranges.
"""

from __future__ import annotations

# docker0 of the project's own dockerd and the pool for networks created without a subnet.
BRIDGE_IP = "10.213.0.1/24"
ADDRESS_POOL = "base=10.213.128.0/17,size=24"

# The docker network kind puts its nodes on (created by ``tools/dev cluster up`` before kind).
KIND_NETWORK = "kind"
KIND_SUBNET = "10.213.16.0/24"
KIND_GATEWAY = "10.213.16.1"

# Inside the node: pods and Services.
POD_SUBNET = "10.244.0.0/16"
NODE_POD_CIDR = "10.244.0.0/24"  # the first (only) node's share of POD_SUBNET
SERVICE_SUBNET = "10.96.0.0/16"
