"""``sim export``: convert a results store (``.zarr``, written as a run goes) into one netCDF file (``.nc``)."""

from __future__ import annotations

from pathlib import Path

from sim.core.validate import InputError, check_writable


def add_parser(sub) -> None:
    p = sub.add_parser(
        "export",
        help="convert a results store (.zarr) to a netCDF file (.nc) when it fits in memory",
        description="Read a results store written by sim sweep or sim mc with -o RUN.zarr and write the same "
        "variables, coordinates and attrs as one netCDF file (atomically). An incomplete store exports as it is: "
        "its 'computed' variable marks the finished points.",
        epilog="example:\n  sim export run.zarr run.nc",
    )
    p.add_argument("source", metavar="STORE", help="the .zarr results store")
    p.add_argument("target", metavar="FILE", help="the .nc file to write")
    p.add_argument("--overwrite", action="store_true", help="replace FILE if it exists")


def run(args) -> int:
    source, target = Path(args.source), Path(args.target)
    if source.suffix != ".zarr":
        raise InputError("STORE", f"must be a .zarr results store, got {source}")
    if not source.is_dir():
        raise InputError("STORE", f"{source} does not exist or is not a store")
    if target.suffix != ".nc":
        raise InputError("FILE", f"must end in .nc, got {target}")
    if target.exists() and not args.overwrite:
        raise InputError("FILE", f"{target} exists: add --overwrite to replace it")
    check_writable(str(target))

    from sim.core import io

    io.export(source, target)
    print(f"wrote {target}")
    return 0
