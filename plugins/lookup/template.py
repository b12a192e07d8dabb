# SPDX-License-Identifier: Apache-2.0
from __future__ import annotations

DOCUMENTATION = r"""
name: template
short_description: Render a role's templates with the task's variables, without copying them
version_added: "0.3.0"
author: scratch.kubernetes developers (@scratch-kubernetes)
description:
  - Returns the text of each template named in the terms, found where C(ansible.builtin.template) finds it
    (the role's C(templates/) directory first) and rendered the same way, with the same extra variables
    (C(ansible_managed), C(template_path) and the others that M(ansible.builtin.template) sets).
  - The difference is the cost. C(ansible.builtin.template) deep-copies every variable of the task before each
    render; the roles render their configuration files, units and command lines on every run for every node,
    and those copies were the largest share of a no-op run's templating on the controller. Here the
    template's own variables are laid over the task's in a new top-level mapping; nothing below it is copied.
    A template must therefore not change the variables it reads (none of the collection's do; they build
    their own lists).
options:
  _terms:
    description: Names of the templates, looked up as C(ansible.builtin.template) looks them up.
    required: true
  template_vars:
    description: Variables available to the templates on top of the task's.
    type: dict
    default: {}
"""

EXAMPLES = r"""
- name: Install a unit rendered from the role's templates/kubelet.service.j2
  scratch.kubernetes.install_files:
    files:
      - content: "{{ lookup('scratch.kubernetes.template', 'kubelet.service.j2') }}"
        dest: /etc/systemd/system/kubelet.service
"""

RETURN = r"""
_raw:
  description: The rendered text of each template.
  type: list
  elements: str
"""

import os
from typing import Any

from ansible.errors import AnsibleError
from ansible.plugins.lookup import LookupBase
from ansible.template import generate_ansible_template_vars, trust_as_template


class LookupModule(LookupBase):
    def run(self, terms: list[str], variables: dict[str, Any] | None = None, **kwargs: Any) -> list[str]:
        variables = variables or {}
        self.set_options(var_options=variables, direct=kwargs)
        rendered = []
        for term in terms:
            path = self.find_file_in_search_path(variables, "templates", term)
            if not path:
                raise AnsibleError(f"the template {term} could not be found")
            # Includes are looked up as ansible.builtin.template looks them up: the template's own
            # directory, then each search path's templates/ directory and the path itself.
            searchpath = [os.path.dirname(path)]
            for directory in variables.get("ansible_search_path", []):
                searchpath += [os.path.join(directory, "templates"), directory]
            added = generate_ansible_template_vars(path=term, fullpath=path)
            if "ansible_managed" in variables:
                del added["ansible_managed"]  # the operator's own wins, as with ansible.builtin.template
            layered = dict(variables)
            layered.update(added)
            layered.update(self.get_option("template_vars"))
            templar = self._templar.copy_with_new_env(available_variables=layered, searchpath=searchpath)
            source = trust_as_template(self._loader.get_text_file_contents(path))
            rendered.append(templar.template(source, escape_backslashes=False))
        return rendered
