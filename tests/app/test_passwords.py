"""Password hashing strengths (TELECRM_PASSWORD_HASHING): what each one stores, and that
a password hashed at either strength signs in whatever the setting is now."""

from __future__ import annotations

import pytest
from argon2 import extract_parameters

from crm_core.errors import DomainError
from telecrm.messages import russian
from telecrm.passwords import dummy_hash, hash_password, verify_password
from telecrm.settings import Settings, SettingsError


def test_strong_is_rfc_9106_and_light_is_the_owasp_minimum() -> None:
    strong = extract_parameters(hash_password("correct horse", "strong"))
    light = extract_parameters(hash_password("correct horse", "light"))
    assert (strong.memory_cost, strong.time_cost, strong.parallelism) == (65_536, 3, 4)
    assert (light.memory_cost, light.time_cost, light.parallelism) == (19_456, 2, 1)
    assert extract_parameters(hash_password("correct horse")) == strong  # the default
    assert strong.type.name == light.type.name == "ID"


def test_either_hash_verifies_and_a_wrong_password_never_does() -> None:
    for strength in ("strong", "light"):
        stored = hash_password("correct horse", strength)
        assert verify_password(stored, "correct horse")
        assert not verify_password(stored, "correct horse ")
    assert not verify_password(dummy_hash("light"), "anything at all")
    with pytest.raises(DomainError):
        hash_password("short", "light")


def test_the_setting_takes_strong_or_light_and_says_so_otherwise() -> None:
    assert Settings.load({}).password_hashing == "strong"
    assert Settings.load({"TELECRM_PASSWORD_HASHING": "light"}).password_hashing == "light"
    with pytest.raises(SettingsError) as caught:
        Settings.load({"TELECRM_PASSWORD_HASHING": "fast"})
    assert russian(caught.value) == (
        "Настройка TELECRM_PASSWORD_HASHING: непригодное значение «fast».")
