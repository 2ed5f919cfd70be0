"""The AWX-shaped jobs of the kind tests: meshops_dev.awx (shared with tools/bench/awx_job.py)."""

from meshops_dev.awx import AwxJobs, credential_of

__all__ = ["AwxJobs", "credential_of"]
