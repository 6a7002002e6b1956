"""Sealing webhook secrets at rest (webhooks.sealing) and the migration's pure fix."""
import pytest

from kit.links import Keyring
from webhooks.migrations import sealed_secrets
from webhooks.sealing import Seal, SealBroken, is_sealed
from webhooks.signing import new_secret

K1, K2 = "a" * 40, "b" * 40


def seal(keys=None, current=None):
    return Seal(Keyring(keys or {"k1": K1}, current))


def test_a_sealed_secret_opens_for_its_subscription_only():
    secret, box = new_secret(), seal()
    sealed = box.seal(secret, "sub-1")
    assert is_sealed(sealed) and secret not in sealed and sealed.startswith("sealed:v1:k1:")
    assert box.unseal(sealed, "sub-1") == secret
    with pytest.raises(SealBroken):
        box.unseal(sealed, "sub-2")


def test_sealing_twice_gives_two_values():
    box = seal()
    assert box.seal("whsec_x", "s") != box.seal("whsec_x", "s")


def test_a_new_current_key_seals_and_the_old_one_still_opens():
    old = seal().seal("whsec_old", "s")
    both = seal({"k1": K1, "k2": K2})
    assert both.seal("whsec_new", "s").startswith("sealed:v1:k2:")
    assert both.unseal(old, "s") == "whsec_old"


@pytest.mark.parametrize("change", [
    lambda v: v.replace("sealed:v1:k1:", "sealed:v1:k9:"),  # a removed key
    lambda v: v[:-4] + ("AAAA" if not v.endswith("AAAA") else "BBBB"),  # altered
    lambda v: v + "!",  # not base64
])
def test_a_value_no_key_opens_is_refused(change):
    box = seal()
    with pytest.raises(SealBroken):
        box.unseal(change(box.seal("whsec_x", "s")), "s")


def test_a_secret_stored_in_the_clear_is_read_as_it_is():
    assert seal().unseal("whsec_legacy", "s") == "whsec_legacy"


def test_the_migration_seals_clear_secrets_and_leaves_sealed_ones():
    box = seal()
    done = box.seal("whsec_b", "s")
    doc = {"_id": "s", "secrets": [{"secret": "whsec_a", "expires_at": None},
                                   {"secret": done, "expires_at": "2026-12-01"}]}
    fixed = sealed_secrets(box)(doc)["secrets"]
    assert box.unseal(fixed[0]["secret"], "s") == "whsec_a" and is_sealed(fixed[0]["secret"])
    assert fixed[1] == doc["secrets"][1]
    assert sealed_secrets(box)({"_id": "s", "secrets": fixed}) is None
