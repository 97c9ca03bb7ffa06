"""The shared store and ledger on real servers (SeaweedFS's S3 gateway, PostgreSQL): what reaches
the bucket, failures that leave no row without an object, migrations and budgets when replicas
start and spend at once, and a database that restarts under a running server."""

from __future__ import annotations

import hashlib
import os
import resource
import socket
import time

import anyio
import obstore
import psycopg
import psycopg_pool
import pytest
from mcp import Client
from mcp.client.context import ClientRequestContext
from mcp.types import ElicitRequestParams, ElicitResult, ImageContent, TextResourceContents
from obstore.store import S3Store

from mcp_imagegen import database
from mcp_imagegen.config import load_settings
from mcp_imagegen.errors import BudgetError, StoreError
from mcp_imagegen.server.app import build_server
from mcp_imagegen.store.selection import opened
from mcp_imagegen.store.shared import SharedStore
from mcp_imagegen.store.url import StoreUrl
from mcp_imagegen.usage.ledger import Reservation
from mcp_imagegen.usage.prices import Charge, Estimate
from mcp_imagegen.usage.shared_ledger import SharedLedger
from tests.conftest import png_bytes
from tests.connect import http_server
from tests.fakes.openai_images import FakeOpenAIImages
from tests.services import Postgres, SeaweedFS
from tests.test_store_contract import new

pytestmark = pytest.mark.anyio


def bucket_objects() -> dict[str, bytes]:
    """Every object under this test's prefix, read straight from the gateway."""
    url = StoreUrl.parse(os.environ["IMAGEGEN_STORE_URL"])
    raw = S3Store(url.bucket, prefix=url.prefix, client_options={"allow_http": True})
    keys = [meta["path"] for batch in obstore.list(raw) for meta in batch]
    return {key: bytes(obstore.get(raw, key).bytes()) for key in keys}


def rows(database_url: str, query: str) -> list[tuple[object, ...]]:
    with psycopg.connect(database_url) as connection:
        return connection.execute(query).fetchall()


async def test_a_generated_image_is_an_object_and_a_row(shared_env: str) -> None:
    async with Client(build_server(load_settings())) as client:
        result = await client.call_tool(
            "generate_image", {"prompt": "a red card", "provider": "placeholder", "size": "256x256"}
        )
        assert not result.is_error, result.content
        image = result.structured_content["images"][0]
        assert "path" not in image, "an object store has no local path to show"
        blob = (await client.read_resource(image["uri"])).contents[0]
        metadata = (await client.read_resource(f"{image['uri']}/metadata")).contents[0]
        listed = [str(resource.uri) for resource in (await client.list_resources()).resources]
    assert isinstance(result.content[0], ImageContent)
    objects = bucket_objects()
    assert len(objects) == 1
    key, data = next(iter(objects.items()))
    assert key.endswith(f"/{image['id']}.png")
    assert isinstance(metadata, TextResourceContents) and '"sha256"' in metadata.text
    assert hashlib.sha256(data).hexdigest() in metadata.text
    assert listed == [image["uri"]]
    assert blob.mime_type == "image/png"
    ((owner, kind, size),) = rows(shared_env, "SELECT owner, kind, bytes FROM images")
    assert (owner, kind, size) == ("local", "generated", len(data))
    ((outcome, provider),) = rows(shared_env, "SELECT outcome, provider FROM calls")
    assert (outcome, provider) == ("succeeded", "placeholder")


async def test_a_failed_index_write_leaves_no_object(shared_env: str) -> None:
    async with opened(load_settings()) as backing:
        kept = await backing.store.put(new(png_bytes()))
        with psycopg.connect(shared_env, autocommit=True) as connection:
            connection.execute(
                "CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'disk says no'; END $$"
                " LANGUAGE plpgsql; CREATE TRIGGER refuse BEFORE INSERT ON images EXECUTE FUNCTION refuse()"
            )
        with pytest.raises(
            StoreError, match=r"could not index the image .*disk says no\. Nothing was stored"
        ):
            await backing.store.put(new(png_bytes(colour=(1, 2, 3))))
        assert await backing.store.count() == 1
    keys = list(bucket_objects())
    assert len(keys) == 1 and keys[0].endswith(f"/{kept.id}.png"), "the refused image's object is gone"


async def test_object_store_stopped_mid_run_is_a_clear_error_and_no_row(
    shared_env: str, seaweedfs: SeaweedFS
) -> None:
    async with opened(load_settings()) as backing:
        await backing.store.put(new(png_bytes()))
        seaweedfs.stop()
        try:
            started = time.monotonic()
            with pytest.raises(
                StoreError, match=r"could not write an image to s3://images/.*Nothing was stored"
            ):
                await backing.store.put(new(png_bytes(colour=(5, 5, 5))))
            assert time.monotonic() - started < 30, "an unreachable object store fails in seconds"
            assert await backing.store.count() == 1, "no row without an object"
        finally:
            seaweedfs.start()
        assert len(bucket_objects()) == 1


async def test_object_store_killed_mid_upload_leaves_no_row_and_no_object(
    shared_env: str, seaweedfs: SeaweedFS
) -> None:
    async with opened(load_settings()) as backing:
        kept = await backing.store.put(new(png_bytes()))
        failures: list[BaseException] = []

        async def upload() -> None:
            try:
                await backing.store.put(new(os.urandom(64 * 1024 * 1024)))  # about a second to upload
            except StoreError as exc:
                failures.append(exc)

        try:
            async with anyio.create_task_group() as group:
                group.start_soon(upload)
                await anyio.sleep(0.15)
                seaweedfs.kill()
        finally:
            seaweedfs.start()
        assert len(failures) == 1, "the upload did not fail"
        assert "Nothing was stored" in str(failures[0])
        assert await backing.store.count() == 1
        deadline = time.monotonic() + 30
        while True:  # a SeaweedFS restarted after a crash answers 500 until its volumes are loaded
            try:
                assert (await backing.store.read(kept.id, owner="local"))[0] == kept
                break
            except StoreError:
                assert time.monotonic() < deadline, "the kept image did not come back"
                await anyio.sleep(0.2)
    keys = list(bucket_objects())
    assert len(keys) == 1 and keys[0].endswith(f"/{kept.id}.png"), "no partial object is left"


async def test_replicas_starting_at_once_migrate_the_schema_once(postgres: Postgres) -> None:
    url = postgres.new_database()
    opened_pools: list[database.Database] = []

    async def replica() -> None:
        opened_pools.append(await database.connect(url))

    async with anyio.create_task_group() as group:
        for _ in range(4):
            group.start_soon(replica)
    for pool in opened_pools:
        await pool.close()
    versions = rows(url, "SELECT version FROM imagegen_schema ORDER BY version")
    assert versions == [(version,) for version in range(1, len(database.MIGRATIONS) + 1)]
    again = await database.connect(url)  # a restart finds nothing to do
    await again.close()
    assert rows(url, "SELECT COUNT(*) FROM imagegen_schema") == [(len(database.MIGRATIONS),)]


async def test_what_a_model_check_learned_is_one_document_every_replica_reads(postgres: Postgres) -> None:
    """`models check` on one replica (or the command line) writes the overlay; another replica
    reads the same, and a later check replaces it."""
    import datetime

    from mcp_imagegen.providers.model_data import Overlay, shipped
    from mcp_imagegen.store.model_overlay import DatabaseOverlay

    url = postgres.new_database()
    replicas = [await database.connect(url), await database.connect(url)]
    writer, reader = (DatabaseOverlay(replica) for replica in replicas)
    assert await reader.read() is None
    record = shipped().find("openai", "gpt-image-2.5-flare")
    assert record is not None
    learned = record.model_copy(
        update={"providers": ("openai",), "status": "deprecated", "shutdown": datetime.date(2099, 1, 1)}
    )
    first = Overlay(
        checked_at=datetime.datetime(2026, 12, 8, tzinfo=datetime.timezone.utc), records=(learned,)
    )
    await writer.write(first)
    assert await reader.read() == first
    book = shipped().with_overlay(await reader.read())
    judged = book.judge("openai", "gpt-image-2.5-flare-2026-09-08", datetime.date(2026, 12, 8))
    assert (
        judged is not None
        and judged.status == "deprecated"
        and judged.record.shutdown == datetime.date(2099, 1, 1)
    )
    second = Overlay(checked_at=datetime.datetime(2026, 12, 9, tzinfo=datetime.timezone.utc))
    await reader.write(second)
    assert await writer.read() == second and rows(url, "SELECT COUNT(*) FROM model_overlay") == [(1,)]
    for replica in replicas:
        await replica.close()


async def test_a_budget_holds_exactly_across_replicas(postgres: Postgres) -> None:
    """Two replicas (two pools), 24 calls at once at $0.04 against a $0.20 day: exactly five pass."""
    url = postgres.new_database()
    replicas = [await database.connect(url), await database.connect(url)]
    ledgers = [SharedLedger(replica, time.time) for replica in replicas]
    charge = Charge("openai", "gpt-image-1.5", "generate", 1, "1024x1024", "medium")
    passed: list[int] = []
    refused: list[str] = []

    async def call(index: int) -> None:
        try:
            reservation = await ledgers[index % 2].reserve(
                "alice", "generate_image", charge, Estimate(0.04, "t"), 0.2
            )
        except BudgetError as exc:
            refused.append(str(exc))
        else:
            passed.append(reservation.row_id)

    async with anyio.create_task_group() as group:
        for index in range(24):
            group.start_soon(call, index)
    assert (len(passed), len(refused)) == (5, 19)
    assert "alice has spent $0.20 of the $0.20 daily budget" in refused[-1]
    state = await ledgers[1].budget("alice", 0.2)
    assert state.spent_usd == pytest.approx(0.2) and state.remaining_usd == 0
    bobs = await ledgers[0].reserve("bob", "generate_image", charge, Estimate(0.04, "t"), 0.2)
    assert bobs.row_id not in passed, "one person's spend is not another's"
    # A call released before it was sent gives its room back, on the other replica too.
    await ledgers[0].release(Reservation(passed[0], charge, Estimate(0.04, "t")))
    assert (await ledgers[1].budget("alice", 0.2)).remaining_usd == pytest.approx(0.04)
    again = await ledgers[1].reserve("alice", "generate_image", charge, Estimate(0.04, "t"), 0.2)
    await ledgers[1].settle(again, "succeeded", Estimate(0.04, "t"))
    await ledgers[0].release(again)  # a settled call stays
    assert (await ledgers[0].budget("alice", 0.2)).remaining_usd == 0
    for replica in replicas:
        await replica.close()


async def test_the_server_reconnects_after_postgres_restarts(
    shared_env: str, postgres: Postgres, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Connections taken from the pool are pinged only when their socket says the server went away:
    none while it is up, and a fresh connection for the first request after a restart."""
    pings: list[object] = []
    ping = psycopg_pool.AsyncConnectionPool.check_connection

    async def counted(connection: psycopg.AsyncConnection[object]) -> None:
        pings.append(connection)
        await ping(connection)

    monkeypatch.setattr(psycopg_pool.AsyncConnectionPool, "check_connection", counted)
    async with opened(load_settings()) as backing:
        first = await backing.store.put(new(png_bytes()))
        for _ in range(3):
            assert await backing.store.get(first.id, owner="local") == first
        assert pings == [], "a sound connection is used without a round trip first"
        postgres.stop()
        try:
            with pytest.raises(StoreError, match=r"postgresql://imagegen@127\.0\.0\.1:\d+/t_\w+"):
                await backing.store.get(first.id, owner="local")
        finally:
            postgres.start()
        assert await backing.store.get(first.id, owner="local") == first
        assert pings, "the connections the restart closed were checked, and replaced"
        second = await backing.store.put(new(png_bytes(colour=(7, 7, 7))))
        assert [image.id for image in (await backing.store.page(None, 5, owner="local")).images] == [
            second.id,
            first.id,
        ]


async def test_an_unreachable_database_is_a_clear_error_without_the_password(
    postgres: Postgres, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IMAGEGEN_STORE_URL", "s3://images/x")
    monkeypatch.setenv(
        "IMAGEGEN_DATABASE_URL", f"postgresql://imagegen:hunter2@127.0.0.1:{postgres.port}/missing"
    )
    with pytest.raises(StoreError) as raised:
        async with opened(load_settings()):
            pass
    message = str(raised.value)
    assert "hunter2" not in message
    assert message.startswith(
        f"cannot use the database at postgresql://imagegen@127.0.0.1:{postgres.port}/missing"
    )
    assert 'database "missing" does not exist' in message


async def test_large_images_stream_in_chunks(shared_env: str) -> None:
    data = os.urandom(5 * 1024 * 1024 + 17)
    async with opened(load_settings()) as backing:
        store = backing.store
        assert isinstance(store, SharedStore)
        stored = await store.put(new(data))
        record, chunks = await store.stream(stored.id, owner="local")
        received = [chunk async for chunk in chunks]
    assert record == stored
    assert len(received) > 1 and b"".join(received) == data


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_a_stateless_server_asks_where_it_can_and_otherwise_goes_ahead(
    shared_env: str, fake_openai: FakeOpenAIImages, mode: str
) -> None:
    """Replicas serve Streamable HTTP statelessly. On 2026-07-28 the confirmation is asked through
    the result; a legacy client's capabilities are not remembered between its requests there (and
    there is no back-channel), so its call goes ahead under the budget rather than failing."""
    asked: list[ElicitRequestParams] = []

    async def elicit(context: ClientRequestContext, params: ElicitRequestParams) -> ElicitResult:
        asked.append(params)
        return ElicitResult(action="accept", content={"proceed": True})

    env = {name: os.environ[name] for name in os.environ if name.startswith(("IMAGEGEN_", "AWS_"))}
    env |= {
        "OPENAI_API_KEY": fake_openai.api_key,
        "OPENAI_BASE_URL": f"{fake_openai.url}/v1",
        "IMAGEGEN_CONFIRM_ABOVE_USD": "0.001",
    }
    with http_server("http", env) as url:
        async with Client(f"{url}/mcp", mode=mode, elicitation_callback=elicit) as client:
            result = await client.call_tool("generate_image", {"prompt": "a red card", "provider": "openai"})
    assert not result.is_error, result.content
    assert len(asked) == (1 if mode == "auto" else 0)
    assert len(fake_openai.requests) == 1


def test_the_pool_check_reads_sockets_past_select_s_limit() -> None:
    """A replica serving many clients has descriptors past 1024, where `select` refuses them: the
    check before a pooled connection is used still tells a quiet socket from one the server closed."""
    limit = resource.getrlimit(resource.RLIMIT_NOFILE)
    if limit[1] != resource.RLIM_INFINITY and limit[1] < 2100:
        pytest.skip("this machine allows no descriptor past 2048")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(limit[0], 2100), limit[1]))
    ours, server = socket.socketpair()
    high = os.dup2(ours.fileno(), 2048)
    try:
        assert not database._has_input(high), "a quiet connection is used without a round trip"
        server.close()
        assert database._has_input(high), "a connection its server closed gets the full check"
    finally:
        os.close(high)
        ours.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, limit)
