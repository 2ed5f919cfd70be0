"""Free loopback ports for servers the tests start."""

from meshops_dev.local import free_ports

_ISSUED_PORTS = set()


def free_port():
    """A free loopback port, never one this test session handed out before.

    The kernel may give a just-closed ephemeral port again, so two listeners of one Envoy
    configuration could otherwise get the same port (seen once: "duplicate address").
    """
    for _attempt in range(100):
        (port,) = free_ports(1)
        if port not in _ISSUED_PORTS:
            _ISSUED_PORTS.add(port)
            return port
    raise RuntimeError("no loopback port that was not handed out before, after 100 attempts")
