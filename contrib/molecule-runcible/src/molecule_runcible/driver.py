# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``runcible`` Molecule driver.

A managed variant of Molecule's default (delegated) driver: the create and destroy steps are one-line
playbooks, written into the scenario's ephemeral directory, that import the collection's
``runcible.oci.molecule_create`` and ``runcible.oci.molecule_destroy`` (the package ships no playbook file:
outside an Ansible run nothing could resolve the import); those make one container per platform and write Molecule's
instance config, whose ``login_cmd`` is what ``molecule login`` runs. A scenario's own
``create.yml``/``destroy.yml`` still win, as with every Molecule driver.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from molecule.driver.delegated import Delegated
from molecule.util import sysexit_with_message

STEP_PLAYBOOK = """---
# Molecule's %(step)s step of the molecule-runcible driver: the collection's playbook does the work.
- name: %(title)s
  ansible.builtin.import_playbook: runcible.oci.molecule_%(step)s
"""
CONMON_PATHS = ('/usr/libexec/podman/conmon', '/usr/local/libexec/podman/conmon')


class Runcible(Delegated):
    """Instances are daemonless OCI containers made by the runcible.oci collection."""

    title = 'Daemonless OCI containers run by conmon and runc or crun (the runcible.oci collection).'

    def __init__(self, config=None) -> None:
        super().__init__(config)
        self._name = 'molecule-runcible'

    @property
    def managed(self) -> bool:
        """Always managed: the collection's playbooks make and remove the instances."""
        return True

    @property
    def login_cmd_template(self) -> str:
        """``molecule login``: the instance config's command (the runtime's exec of a login shell)."""
        if self._config is not None and 'login_cmd_template' in self.options:
            return self.options['login_cmd_template']
        return '{login_cmd}'

    def get_playbook(self, step: str) -> str | None:
        """The create and destroy steps (other steps: the scenario's, if any), written for this scenario."""
        if step not in ('create', 'destroy') or self._config is None:
            return None
        directory = Path(self._config.scenario.ephemeral_directory)
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / ('runcible-%s.yml' % step)
        text = STEP_PLAYBOOK % {'step': step, 'title': step.capitalize()}
        if not path.is_file() or path.read_text() != text:
            path.write_text(text)
        return str(path)

    def schema_file(self) -> str:
        """The JSON schema of this driver's part of molecule.yml."""
        return str(Path(__file__).resolve().parent / 'driver.json')

    def sanity_checks(self) -> None:
        """Fail early, with what to do, where the instances cannot run."""
        if os.geteuid() != 0:
            sysexit_with_message('the runcible driver runs containers as root: run molecule as root')
        if not (shutil.which('runc') or shutil.which('crun')):
            sysexit_with_message('the runcible driver needs runc or crun on this host (apt-get install runc conmon, '
                                 'or the role runcible.oci.runtime)')
        if not (shutil.which('conmon') or any(os.access(path, os.X_OK) for path in CONMON_PATHS)):
            sysexit_with_message('the runcible driver needs conmon on this host (apt-get install conmon, '
                                 'or the role runcible.oci.runtime)')
