"""meshops.istio air-gapped dev tooling: container engine, kind, node image and cluster from source.

Entry point: ``tools/dev`` (see ``cli.py``). Standard library only.
"""
