# -*- coding: utf-8 -*-
# Copyright: pi-cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""pi_host_facts' one `systemctl show` for every unit: parsing the answer as systemd 252 (bookworm) and
257 (trixie) print it. The lab's testinfra compares the module with `systemctl is-enabled`/`is-active` on the
real systemd of both releases (molecule/default/tests/test_host_layers.py)."""

from ansible_collections.stratdata.pi_cluster.plugins.modules import pi_host_facts as M  # noqa: E402

# `systemctl show --property=Id,LoadState,UnitFileState,ActiveState -- chrony sshd multipathd.socket` on trixie
SHOWN = """Id=chrony.service
LoadState=loaded
ActiveState=active
UnitFileState=enabled

Id=ssh.service
LoadState=loaded
ActiveState=active
UnitFileState=enabled

Id=multipathd.socket
LoadState=not-found
ActiveState=inactive
UnitFileState=
"""


class FakeModule:
    def __init__(self, out, rc=0):
        self.out, self.rc, self.calls = out, rc, []

    def get_bin_path(self, name):
        return "/usr/bin/" + name

    def run_command(self, args):
        self.calls.append(args)
        return self.rc, self.out, ""


def test_one_process_answers_both_questions_in_the_order_asked():
    module = FakeModule(SHOWN)
    enabled, active = M.unit_states(module, ["chrony", "sshd", "multipathd.socket"], ["chrony", "multipathd.socket"])
    assert enabled == {"chrony": "enabled", "sshd": "enabled", "multipathd.socket": "not-found"}
    assert active == {"chrony": "active", "multipathd.socket": "inactive"}
    assert len(module.calls) == 1
    assert module.calls[0][-3:] == ["chrony", "sshd", "multipathd.socket"]


def test_a_unit_asked_twice_is_shown_once():
    module = FakeModule(SHOWN.split("\n\n")[0])
    enabled, active = M.unit_states(module, ["chrony"], ["chrony"])
    assert (enabled, active) == ({"chrony": "enabled"}, {"chrony": "active"})
    assert module.calls[0][-1] == "chrony" and module.calls[0].count("chrony") == 1


def test_no_systemd_answer_means_not_found_everywhere():
    # "System has not been booted with systemd as init system (PID 1). Can't operate." on stderr, rc 1
    enabled, active = M.unit_states(FakeModule("", rc=1), ["chrony"], ["chrony"])
    assert (enabled, active) == ({"chrony": "not-found"}, {"chrony": "not-found"})


def test_masked_and_static_unit_file_states_pass_through():
    assert M.unit_file_state({"LoadState": "masked", "UnitFileState": "masked"}) == "masked"
    assert M.unit_file_state({"LoadState": "loaded", "UnitFileState": "static"}) == "static"
    assert M.parse_unit_show("Id=a.service\n\nId=b.service", 3) is None
