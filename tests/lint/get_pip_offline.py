"""Stand-in for pip's get-pip.py bootstrap script, used by ansible-test's sanity venvs.

ansible-test downloads get-pip.py from ci-files.testing.ansible.com, which this machine cannot
reach. This script does what get-pip does, from reachable sources: it installs the pip wheel
bundled with Python (ensurepip), then lets that pip install the requested packages from the
package index. get-pip's own options (--no-setuptools, --no-wheel) are honoured by omission.
"""

import subprocess
import sys

GET_PIP_ONLY = {"--no-setuptools", "--no-wheel"}


def main():
    # in a child process: ensurepip sets PIP_CONFIG_FILE=/dev/null in its environment, which
    # would hide the machine's pip configuration (index, certificates) from the install below
    bootstrap = subprocess.call([sys.executable, "-m", "ensurepip", "--upgrade"])
    if bootstrap != 0:
        return bootstrap
    args = [a for a in sys.argv[1:] if a not in GET_PIP_ONLY]
    return subprocess.call([sys.executable, "-m", "pip", "install", *args])


if __name__ == "__main__":
    sys.exit(main())
