"""moto's server lists its own package folder (a listdir and a stat per entry), under a lock, on
every request to find the service: most of its time went there under load. The list never
changes while it runs, so it is listed once."""

from __future__ import annotations


def install() -> None:
    from moto import backends

    if getattr(backends.list_of_moto_modules, "_mailroom_cached", False):
        return
    modules = tuple(backends.list_of_moto_modules())

    def cached() -> tuple[str, ...]:
        return modules

    cached._mailroom_cached = True  # type: ignore[attr-defined]
    backends.list_of_moto_modules = cached
