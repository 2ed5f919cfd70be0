"""What the tests share: loopback ports, child processes, go-httpbin, a real API server and the kind
cluster as the kind tests drive it. Built on the tools package (``meshops_dev``, installed in the
venv); test modules import from here, never from each other or from a conftest."""
