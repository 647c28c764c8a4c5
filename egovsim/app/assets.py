"""Solara's front end for the browser view, installed from the npm registry so `egovsim serve` works offline.

Solara's page loads its JavaScript and CSS from a CDN at run time, through a proxy cache on the server
(`{sys.prefix}/share/solara/cdn/`): without internet and with an empty cache the page stays blank. This module
fills that cache with the exact npm packages the installed solara asks for, fetched with the npm client
(`npm pack`), so the normal set-up (`make test`, `make serve`) leaves a venv that serves the page offline.

The versions are read from solara's own files (its page template, settings and grid widget), not written
here, so a solara upgrade asks for the packages it needs.

    python -m egovsim.app.assets            install what is missing (idempotent), then compile what the
                                            server loads at start (egovsim/app/warm.py)
    python -m egovsim.app.assets --check    exit 1 and list what is missing, install nothing
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

MARKER = ".egovsim-complete"  # written last into each unpacked package: a half-unpacked one is not complete


@dataclass(frozen=True)
class Asset:
    name: str  # npm package name, e.g. "@widgetti/solara-vuetify-app"
    version: str  # exact version, e.g. "10.1.1"
    why: str  # which solara file asks for it

    @property
    def spec(self) -> str:
        return f"{self.name}@{self.version}"


def solara_dir() -> Path:
    import solara

    return Path(solara.__file__).resolve().parent


def cache_dir() -> Path:
    """Solara's CDN proxy cache (SOLARA_ASSETS_PROXY_CACHE_DIR, default {sys.prefix}/share/solara/cdn)."""
    from solara.server import settings

    return Path(settings.assets.proxy_cache_dir)


def _uses_vue3() -> bool:
    import ipyvue

    return ipyvue.__version__.startswith("3")  # solara.server.server decides the same way


def required() -> list[Asset]:
    """The npm packages (exact versions) the installed solara loads for a Mesa SolaraViz page."""
    root = solara_dir()
    app = "@widgetti/solara-vuetify3-app" if _uses_vue3() else "@widgetti/solara-vuetify-app"
    grid = "widgets/vue/gridlayout_v3.vue" if _uses_vue3() else "widgets/vue/gridlayout.vue"
    wanted = [
        (app, "server/templates/solara.html.j2"),  # the page's Vue/Vuetify app, CSS, fonts
        ("requirejs", "server/templates/solara.html.j2"),  # module loader of the widgets
        ("font-awesome", "server/settings.py"),  # icon font linked by the page
        ("@widgetti/vue-grid-layout", grid),  # SolaraViz's draggable component grid
    ]
    assets = []
    for name, rel in wanted:
        text = (root / rel).read_text(encoding="utf-8")
        versions = sorted(set(re.findall(re.escape(name) + r"@(\d+\.\d+\.\d+(?:-[0-9A-Za-z.]+)?)/", text)))
        if len(versions) != 1:
            raise RuntimeError(
                f"solara {rel}: expected one version of {name}, found {versions or 'none'}; "
                "update egovsim/app/assets.py for this solara release"
            )
        assets.append(Asset(name, versions[0], f"solara/{rel}"))
    return assets


def is_installed(asset: Asset, cache: Path) -> bool:
    return (cache / asset.spec / MARKER).is_file()


def missing(cache: Path | None = None) -> list[Asset]:
    cache = cache_dir() if cache is None else cache
    return [a for a in required() if not is_installed(a, cache)]


def _npm() -> str:
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError(
            "npm not found: install Node.js and npm (Debian: apt-get install -y npm), "
            "then run `python -m egovsim.app.assets` again"
        )
    return npm


def install_one(asset: Asset, cache: Path) -> Path:
    """Fetch one package with `npm pack` and unpack it to <cache>/<name>@<version>/ (atomically)."""
    target = cache / asset.spec
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".egovsim-") as tmp:
        tmp = Path(tmp)
        proc = subprocess.run(
            [_npm(), "pack", asset.spec, "--pack-destination", str(tmp), "--silent"],
            capture_output=True,
            text=True,
            cwd=tmp,
        )
        tarballs = list(tmp.glob("*.tgz"))
        if proc.returncode != 0 or len(tarballs) != 1:
            raise RuntimeError(
                f"npm pack {asset.spec} failed (exit {proc.returncode}): {(proc.stderr or proc.stdout).strip()[-500:]}"
            )
        unpacked = tmp / "unpacked"
        with tarfile.open(tarballs[0]) as tar:
            tar.extractall(unpacked, filter="data")
        # npm tarballs hold one top folder (usually "package/"): its content is the package root
        tops = [p for p in unpacked.iterdir()]
        root = tops[0] if len(tops) == 1 and tops[0].is_dir() else unpacked
        (root / MARKER).write_text(f"{asset.spec} from the npm registry (asked for by {asset.why})\n")
        if target.exists():
            shutil.rmtree(target)
        root.rename(target)
    return target


def install(cache: Path | None = None, quiet: bool = False) -> list[Asset]:
    """Install every missing asset; returns those installed now."""
    cache = cache_dir() if cache is None else cache
    todo = missing(cache)
    for asset in todo:
        if not quiet:
            print(f"egovsim.app.assets: {asset.spec} -> {cache / asset.spec}", file=sys.stderr)
        install_one(asset, cache)
    return todo


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m egovsim.app.assets",
        description="Install Solara's front-end assets for offline use of egovsim serve.",
    )
    parser.add_argument("--check", action="store_true", help="only check: exit 1 if anything is missing")
    parser.add_argument("--dir", type=Path, default=None, help="cache folder (default: solara's proxy cache)")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    cache = cache_dir() if args.dir is None else args.dir
    if args.check:
        todo = missing(cache)
        for asset in todo:
            print(f"missing: {asset.spec} (asked for by {asset.why})")
        if not todo and not args.quiet:
            print(f"offline assets complete in {cache}")
        return 1 if todo else 0
    try:
        done = install(cache, quiet=args.quiet)
    except RuntimeError as exc:
        print(f"egovsim.app.assets: error: {exc}", file=sys.stderr)
        return 1
    if not args.quiet:
        have = ", ".join(a.spec for a in required())
        print(f"offline assets {'installed' if done else 'already complete'} in {cache}: {have}")
    from egovsim.app import warm  # a start then loads the server's modules and kernels, never compiles them

    return 1 if warm.warm(quiet=args.quiet) else 0


if __name__ == "__main__":
    sys.exit(main())
