"""Offline stand-in for the get-pip.py script that ansible-test downloads.

ansible-test creates one virtualenv per sanity test (without pip) and bootstraps
pip into it by running a get-pip.py script that it downloads from a CI file
server, caching it as ~/.ansible/test/cache/get_pip_<version>.py. That server
is not reachable from every machine that runs `make sanity`, so
scripts/host-setup.sh installs this file under that cache name instead, next to
a pip wheel downloaded from PyPI. Like get-pip.py, it runs pip from that wheel
to install the requested packages (normally just ``pip==<version>``).
"""

from __future__ import annotations

import glob
import os
import sys


def find_pip_wheel(directory: str) -> str:
    """Return the path of the newest pip wheel stored in directory."""
    wheels = sorted(glob.glob(os.path.join(directory, 'pip-*-py3-none-any.whl')))
    if not wheels:
        sys.exit('no pip wheel found in %s: run `make setup` again' % directory)
    return wheels[-1]


def main() -> None:
    """Install the packages named on the command line with pip run from the wheel."""
    here = os.path.dirname(os.path.abspath(__file__))
    wheel = find_pip_wheel(here)
    # get-pip.py options that pip itself does not know
    args = [arg for arg in sys.argv[1:] if arg not in ('--no-setuptools', '--no-wheel')]
    sys.path.insert(0, wheel)

    from pip._internal.cli.main import main as pip_main  # pylint: disable=import-outside-toplevel

    sys.exit(pip_main(['install', '--upgrade', '--force-reinstall', '--no-index', '--find-links', here] + args))


if __name__ == '__main__':
    main()
