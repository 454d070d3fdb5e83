"""Write an offline Sphinx inventory of the Ansible docs site for the collection's docs build.

    usage: python scripts/ansible-docs-inventory.py OUTPUT.inv

The generated collection docs refer to Ansible's own docs (``common_return_values``, the
configuration settings and their ``ANSIBLE_*`` variables, ``M(ansible.builtin.command)``...).
Sphinx resolves them through intersphinx, which downloads the docs site's objects.inv: no network
here, so this script writes that inventory from the installed ansible-core instead (the builtin
plugins it ships, the environment variables of its config/base.yml, the few labels of the
reference appendices the generated pages use). The links point at docs.ansible.com's devel docs.
A reference to anything else of the Ansible docs stays unresolved and fails the build (nitpicky,
warnings are errors), as a broken link should.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zlib

import ansible.config
import yaml

# the labels of Ansible's docs that antsibull-docs' page templates refer to (its data/docsite/*.j2),
# and a few the plugins' own docs may use
LABELS = {
    'action_plugins': ('plugins/action.html#action-plugins', 'Action plugins'),
    'callback_plugins': ('plugins/callback.html#callback-plugins', 'Callback plugins'),
    'list_of_callback_plugins': ('collections/callback_index_stdout.html#list-of-callback-plugins',
                                 'Index of all Callback Plugins'),
    'list_of_collections': ('collections/index.html#list-of-collections', 'Collection Index'),
    'collections_keyword': ('collections_guide/collections_using_playbooks.html#collections-keyword',
                            'Simplifying module names with the collections keyword'),
    'common_return_values': ('reference_appendices/common_return_values.html#common-return-values', 'Return Values'),
    'ansible_configuration_settings': ('reference_appendices/config.html#ansible-configuration-settings',
                                       'Ansible Configuration Settings'),
    'playbooks_variables': ('playbook_guide/playbooks_variables.html#playbooks-variables', 'Using Variables'),
    'module_defaults': ('playbook_guide/playbooks_module_defaults.html#module-defaults', 'Module defaults'),
    'check_mode_dry': ('playbook_guide/playbooks_checkmode.html#check-mode-dry', 'Validating tasks'),
    'intro_inventory': ('inventory_guide/intro_inventory.html#intro-inventory', 'How to build your inventory'),
    'playbooks_delegation': ('playbook_guide/playbooks_delegation.html#playbooks-delegation',
                             'Controlling where tasks run'),
}
PLUGIN_TYPES = ('module', 'become', 'cache', 'callback', 'connection', 'filter', 'inventory', 'lookup',
                'shell', 'strategy', 'test', 'vars')


def builtin_plugins() -> list[tuple[str, str]]:
    found = []
    for plugin_type in PLUGIN_TYPES:
        out = subprocess.run(['ansible-doc', '-t', plugin_type, '--list', '--json', 'ansible.builtin'],
                             check=True, capture_output=True, text=True).stdout
        found.extend((name.split('.')[-1], plugin_type) for name in yaml.safe_load(out) or {})
    return sorted(found)


def environment_variables() -> list[str]:
    with open(os.path.join(os.path.dirname(ansible.config.__file__), 'base.yml'), encoding='utf-8') as handle:
        settings = yaml.safe_load(handle)
    names = set()
    for setting in settings.values():
        for entry in setting.get('env') or []:
            names.add(entry['name'])
    return sorted(names)


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit('usage: %s OUTPUT.inv' % sys.argv[0])
    lines = []
    for label, (uri, title) in sorted(LABELS.items()):
        lines.append('%s std:label -1 %s %s' % (label, uri, title))
    for name, plugin_type in builtin_plugins():
        label = 'ansible_collections.ansible.builtin.%s_%s' % (name, plugin_type)
        anchor = label.replace('.', '-').replace('_', '-')
        lines.append('%s std:label -1 collections/ansible/builtin/%s_%s.html#%s ansible.builtin.%s %s'
                     % (label, name, plugin_type, anchor, name, plugin_type))
    for name in environment_variables():
        lines.append('%s std:envvar 1 reference_appendices/config.html#envvar-$ -' % name)
    header = ('# Sphinx inventory version 2\n# Project: Ansible\n# Version: devel\n'
              '# The remainder of this file is compressed using zlib.\n')
    with open(sys.argv[1], 'wb') as handle:
        handle.write(header.encode() + zlib.compress(('\n'.join(lines) + '\n').encode()))
    print('    offline inventory of the Ansible docs: %d entries in %s' % (len(lines), sys.argv[1]))


if __name__ == '__main__':
    main()
