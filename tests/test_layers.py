"""The layering rules (README "Code map"), read from every import of the product's code.

A package may import the packages below it and never those beside or above it:
``core`` and ``config`` nothing of the domains; ``checkout`` neither ``live``, ``signaling``
nor ``web``; ``signaling`` neither ``checkout``, ``live`` nor ``web``; ``live`` neither
``web`` nor ``signaling``, and of checkout only what its port speaks (events, results and
show states: the catalog is read through ``live.ports.CheckoutPort``); ``webhooks`` only
``core`` (checkout and web call it). No product package imports ``benches``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = ("core", "config", "checkout", "live", "signaling", "webhooks", "web")

FORBIDDEN: dict[str, set[str]] = {
    "core": {"config", "checkout", "live", "signaling", "webhooks", "web", "benches"},
    "config": {"core", "checkout", "live", "signaling", "webhooks", "web", "benches"},
    "checkout": {"live", "signaling", "web", "benches"},
    "signaling": {"checkout", "live", "webhooks", "web", "benches"},
    "live": {"signaling", "webhooks", "web", "benches"},
    "webhooks": {"config", "checkout", "live", "signaling", "web", "benches"},
    "web": {"benches"},
}
# What live may take from checkout: the events it turns into messages, the results its
# port answers with, and the show states.
LIVE_FROM_CHECKOUT = {"checkout.events", "checkout.results", "checkout.show_state"}


def imports_of(path: Path, root: Path) -> list[tuple[int, str]]:
    """(line, absolute module) for every import in ``path`` (relative ones resolved)."""
    tree = ast.parse(path.read_text(), str(path))
    module = ".".join(path.relative_to(root).with_suffix("").parts)
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")[: -node.level]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            found.append((node.lineno, name))
            found += [(node.lineno, f"{name}.{alias.name}") for alias in node.names]
    return found


def _port_vocabulary(name: str) -> bool:
    return name == "checkout" or any(
        name == m or name.startswith(m + ".") for m in LIVE_FROM_CHECKOUT
    )


def violations(package: str, root: Path = ROOT) -> list[str]:
    bad: list[str] = []
    for path in sorted((root / package).rglob("*.py")):
        for line, name in imports_of(path, root):
            top = name.split(".")[0]
            where = f"{path.relative_to(root)}:{line} imports {name}"
            beside = package == "live" and top == "checkout" and not _port_vocabulary(name)
            if top in FORBIDDEN[package] or beside:
                bad.append(where)
    return sorted(set(bad))


@pytest.mark.parametrize("package", PRODUCT)
def test_layers(package: str) -> None:
    assert violations(package) == []


def test_the_check_sees_a_forbidden_import(tmp_path: Path) -> None:
    # The reader resolves relative imports and names imported from a package.
    (tmp_path / "live" / "sub").mkdir(parents=True)
    (tmp_path / "live" / "_probe_layers.py").write_text(
        "from checkout import catalog\nfrom ..web import app\nfrom checkout.events import Event\n"
    )
    (tmp_path / "live" / "sub" / "deep.py").write_text("from ...signaling import relay\n")
    assert violations("live", tmp_path) == [
        "live/_probe_layers.py:1 imports checkout.catalog",
        "live/_probe_layers.py:2 imports web",
        "live/_probe_layers.py:2 imports web.app",
        "live/sub/deep.py:1 imports signaling",
        "live/sub/deep.py:1 imports signaling.relay",
    ]


def test_the_rules_are_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    for package in PRODUCT:
        assert f"| `{package}/` |" in readme, package
    assert "must not import" in readme
