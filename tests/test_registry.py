from __future__ import annotations

import pytest

from evonas.registry import Registry, RegistryError


def test_register_get_list() -> None:
    reg: Registry[object] = Registry("widget")

    @reg.register("alpha")
    class Alpha:
        pass

    @reg.register()
    def beta() -> None:
        pass

    assert reg.get("alpha") is Alpha
    assert Alpha.name == "alpha"
    assert reg.list() == ["alpha", "beta"]
    assert reg.list("a*") == ["alpha"]
    assert "beta" in reg and "gamma" not in reg


def test_repeated_name_is_refused() -> None:
    reg: Registry[object] = Registry("widget")
    reg.add("x", 1)
    with pytest.raises(RegistryError, match="already registered"):
        reg.add("x", 2)


def test_unknown_name_lists_the_known_ones() -> None:
    reg: Registry[object] = Registry("widget")
    reg.add("x", 1)
    with pytest.raises(RegistryError, match="unknown widget 'y'; expected one of: x"):
        reg.get("y")
