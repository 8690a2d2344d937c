"""The benchmarks' demo records: media written, then ingested with MediaExampleGen's Beam
ingestion (DirectRunner) under a work folder, once; later runs with the same folder reuse them."""

from __future__ import annotations

import os
from collections.abc import Callable

from core import config as config_lib

COMPLETE = ".complete"  # written last, so an interrupted ingestion starts again


def ingest_once(
    config: config_lib.Config,
    work: str,
    data_dir: str,
    write_media: Callable[[], None] | None = None,
) -> str:
    """`<work>/records` in the Examples layout: `write_media()` (when given) then the
    ingestion of `data_dir`, unless an earlier run completed them."""
    from components.media_example_gen.beam_ingest import ingest

    records = os.path.join(work, "records")
    if os.path.exists(os.path.join(records, COMPLETE)):
        return records
    if write_media is not None:
        write_media()
    print(f"Ingesting {data_dir} to {records} ...", flush=True)
    summary = ingest(
        config_lib.ingest_config(config),
        records,
        os.path.join(work, "quarantine"),
        [],
        data_root=data_dir,
    )
    summary.check()
    open(os.path.join(records, COMPLETE), "w").close()
    return records
