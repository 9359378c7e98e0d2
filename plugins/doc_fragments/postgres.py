# -*- coding: utf-8 -*-
# Copyright: pi-cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared documentation of the PostgreSQL connection options (plugins/module_utils/pg_connection.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    DOCUMENTATION = r"""
options:
  login_host:
    description:
      - Host name or IP address of the PostgreSQL server.
      - A value starting with C(/) is a directory holding the server's Unix-domain socket.
      - In the cluster this is the ClusterIP of the database Service, looked up by the calling role.
    type: str
    default: localhost
    aliases: [host]
  port:
    description:
      - TCP port (or socket file suffix) of the PostgreSQL server.
    type: int
    default: 5432
    aliases: [login_port]
  login_user:
    description:
      - Role to connect as.
    type: str
    default: postgres
  login_password:
    description:
      - Password of O(login_user). Never logged, never included in an error message.
      - Take it from a vault variable and set C(no_log) on the task.
    type: str
  sslmode:
    description:
      - libpq C(sslmode) of the connection.
    type: str
    default: prefer
    choices: [disable, allow, prefer, require, verify-ca, verify-full]
  ca_cert:
    description:
      - File with the CA certificate(s) used to verify the server (libpq C(sslrootcert)).
      - Only meaningful with O(sslmode=verify-ca) or O(sslmode=verify-full).
    type: path
  connect_timeout:
    description:
      - Seconds to wait for the connection to be established.
    type: int
    default: 10
requirements:
  - psycopg2 (Debian package C(python3-psycopg2) or PyPI C(psycopg2-binary)) on the host that runs the module.
notes:
  - The modules use psycopg2 rather than psycopg 3 because it is what Debian bookworm ships as
    C(python3-psycopg2) (no pip on the hosts), what community.postgresql uses, and because
    C(psycopg2.extras.execute_values) gives batched multi-row writes in one round trip per page.
"""
