"""The studio app in a real browser (headless Chromium from Debian, driven by Playwright), hosted
by `tests/studio_host.py` in an iframe sandboxed with `allow-scripts` alone, talking to a real
mcp-imagegen server: the result's image shown (pixels checked in a screenshot), a mask painted
with real pointer events reaching the provider at the image's resolution, "Select subject" with
the local provider, the history grid paging through 60 images, and no request for any network
origin. Screenshots are kept in each test's temp folder."""

from __future__ import annotations

import base64
import io
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import anyio
import numpy as np
import pytest
from mcp import Client
from PIL import Image, ImageDraw

from mcp_imagegen.config import load_settings
from mcp_imagegen.server.app import build_server
from tests.fakes.openai_images import FakeOpenAIImages
from tests.local_scenes import iou, subject_scene
from tests.studio_host import AppsHost, StudioHost, studio_page
from tests.test_studio import fill_history

pytestmark = pytest.mark.anyio


@pytest.fixture
async def client(server_env: dict[str, str], local_models: Path) -> AsyncIterator[Client]:
    """A server with the OpenAI fake and the local provider's models (for "Select subject")."""
    async with Client(build_server(load_settings()), extensions=[AppsHost()]) as connected:
        yield connected


@pytest.fixture
async def host(client: Client) -> AsyncIterator[StudioHost]:
    async with studio_page(client) as page:
        studio = StudioHost(page, client)
        yield studio
        assert studio.network_requests() == [], "the app reached for the network"


async def until(check: Any, what: str, timeout_s: float = 30.0, host: StudioHost | None = None) -> None:
    """Wait for `check()` to hold; on a timeout, say what the app showed and called."""
    deadline = time.monotonic() + timeout_s
    while not await check():
        if time.monotonic() > deadline:
            said = await host.frame.locator("#status").inner_text() if host else ""
            calls = host.calls if host else []
            raise AssertionError(f"timed out waiting for {what} (the app says {said!r}; it called {calls})")
        await anyio.sleep(0.1)


async def generate(client: Client, host: StudioHost, **arguments: Any) -> dict[str, Any]:
    """A generate_image call as the model makes it, shown in the app as a host shows it."""
    result = await client.call_tool("generate_image", arguments)
    assert not result.is_error, result.content
    await host.show(arguments, result)
    facts: dict[str, Any] = result.structured_content or {}
    return facts


async def shown_image_id(host: StudioHost) -> str:
    await until(lambda: host.frame.locator("#viewer").is_visible(), "the image to show")
    await until(lambda: host.frame.locator("#facts dd").count(), "the image's facts")
    return await host.frame.locator("#facts dd").last.inner_text()


def screenshot(data: bytes, path: Path) -> Image.Image:
    path.write_bytes(data)
    return Image.open(io.BytesIO(data)).convert("RGB")


async def test_the_result_shows_full_size_with_its_facts(
    client: Client, host: StudioHost, fake_openai: FakeOpenAIImages, tmp_path: Path
) -> None:
    await host.start(theme="dark")
    made = await generate(client, host, prompt="a lighthouse at dusk", size="1536x1024")
    image_id = await shown_image_id(host)
    assert image_id == made["images"][0]["id"]
    facts = await host.frame.locator("#facts").inner_text()
    assert "a lighthouse at dusk" in facts and "1536 × 1024" in facts and "openai / gpt-image-2" in facts
    # The pixels on screen are the image's: the fake draws a white ellipse on a flat colour.
    original = Image.open(io.BytesIO(fake_openai.images_sent[-1])).convert("RGB")
    shot = screenshot(await host.frame.locator("#picture").screenshot(), tmp_path / "result.png")
    assert abs(shot.width / shot.height - 1.5) < 0.02 and shot.width > 600
    for where in ((0.5, 0.5), (0.05, 0.05), (0.95, 0.9)):
        seen = cast(
            tuple[int, ...],
            shot.getpixel((int(where[0] * (shot.width - 1)), int(where[1] * (shot.height - 1)))),
        )
        expected = cast(tuple[int, ...], original.getpixel((int(where[0] * 1535), int(where[1] * 1023))))
        assert all(abs(a - b) <= 12 for a, b in zip(seen, expected, strict=True)), (where, seen, expected)
    # The host's dark theme is followed.
    background = await host.frame.locator("body").evaluate("b => getComputedStyle(b).backgroundColor")
    assert background in ("rgb(27, 27, 27)",), background
    screenshot(await host.page.screenshot(full_page=True), tmp_path / "studio-dark.png")
    assert await host.page.evaluate("window.appInitialized") is True  # the bridge saw ui/initialize


async def test_a_painted_stroke_is_the_edit_mask_at_the_images_resolution(
    client: Client, host: StudioHost, fake_openai: FakeOpenAIImages, tmp_path: Path
) -> None:
    await host.start()
    await generate(client, host, prompt="a lighthouse", size="1024x1024")
    await shown_image_id(host)
    canvas = host.frame.locator("#mask")
    box = await canvas.bounding_box()
    assert box is not None and box["width"] < 1024  # shown smaller than the image: display only
    path = [(0.2, 0.3), (0.35, 0.45), (0.5, 0.5), (0.7, 0.42), (0.8, 0.6)]
    points = [(box["x"] + fx * box["width"], box["y"] + fy * box["height"]) for fx, fy in path]
    mouse = host.page.mouse
    await mouse.move(*points[0])
    await mouse.down()
    for point in points[1:]:
        await mouse.move(*point, steps=12)
    await mouse.up()
    screenshot(await host.page.screenshot(full_page=True), tmp_path / "painted.png")
    await host.frame.locator("#prompt").fill("put a red kite here")
    before = len(fake_openai.requests)
    await host.frame.locator("#edit").click()
    await until(lambda: _edit_arrived(fake_openai, before), "the edit to reach the provider")
    sent = fake_openai.requests[-1]
    assert sent.path == "/v1/images/edits" and sent.fields()["prompt"] == "put a red kite here"
    [mask_part] = [part for part in sent.files() if part.name == "mask"]
    with Image.open(io.BytesIO(mask_part.data)) as mask:
        assert mask.size == (1024, 1024) and mask.mode == "RGBA"
        transparent = np.asarray(mask.getchannel("A")) < 128
    # The stroke as drawn: the same points in image pixels, 32 screen pixels wide.
    scale = 1024 / box["width"]
    expected = Image.new("L", (1024, 1024), 0)
    draw = ImageDraw.Draw(expected)
    image_points = [(fx * 1024, fy * 1024) for fx, fy in path]
    width = 32 * scale
    draw.line(image_points, fill=255, width=round(width), joint="curve")
    for x, y in (image_points[0], image_points[-1]):
        draw.ellipse((x - width / 2, y - width / 2, x + width / 2, y + width / 2), fill=255)
    truth = np.asarray(expected) > 127
    overlap = (transparent & truth).sum() / (transparent | truth).sum()
    assert overlap > 0.95, overlap
    # The new result opens in the app.
    await until(lambda: _facts_have(host, "put a red kite here"), "the edited image to show")
    screenshot(await host.page.screenshot(full_page=True), tmp_path / "edited.png")


async def mask_alpha(host: StudioHost) -> np.ndarray[Any, np.dtype[np.bool_]]:
    """Where the mask canvas is painted, at the image's resolution, read from its own pixels."""
    url = await host.frame.locator("#mask").evaluate("m => m.toDataURL('image/png')")
    with Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))) as painted:
        return np.asarray(painted.getchannel("A")) > 0


def disc(size: int, centre: tuple[float, float], diameter: float) -> np.ndarray[Any, np.dtype[np.bool_]]:
    ys, xs = np.mgrid[0:size, 0:size]
    return np.asarray((xs + 0.5 - centre[0]) ** 2 + (ys + 0.5 - centre[1]) ** 2 <= (diameter / 2) ** 2)


def agreement(seen: np.ndarray[Any, Any], truth: np.ndarray[Any, Any]) -> float:
    return float((seen & truth).sum() / (seen | truth).sum())


async def test_a_click_paints_a_dab_and_an_eraser_click_clears_one(
    client: Client, host: StudioHost, tmp_path: Path
) -> None:
    """A click is a zero-length stroke, which Chromium 156 draws as nothing even with round caps:
    the brush must still leave a disc of its size, and the eraser must clear one."""
    await host.start()
    await generate(client, host, prompt="a lighthouse", size="1024x1024")
    await shown_image_id(host)
    box = await host.frame.locator("#mask").bounding_box()
    assert box is not None
    scale = 1024 / box["width"]
    diameter = 32 * scale  # the brush slider's default, in screen pixels
    mouse = host.page.mouse
    await mouse.click(box["x"] + 0.5 * box["width"], box["y"] + 0.5 * box["height"])
    dab = disc(1024, (512, 512), diameter)
    assert agreement(await mask_alpha(host), dab) > 0.9
    await host.frame.locator("[data-tool=eraser]").click()
    await mouse.click(box["x"] + 0.5 * box["width"] + 16, box["y"] + 0.5 * box["height"])
    left = dab & ~disc(1024, (512 + 16 * scale, 512), diameter)
    seen = await mask_alpha(host)
    assert agreement(seen, left) > 0.85 and not seen[512, 530]
    screenshot(await host.page.screenshot(full_page=True), tmp_path / "dab.png")


async def _edit_arrived(fake: FakeOpenAIImages, before: int) -> bool:
    return any(sent.path.endswith("/edits") for sent in fake.requests[before:])


async def test_select_subject_with_the_local_provider_masks_the_drawn_object(
    client: Client, host: StudioHost, fake_openai: FakeOpenAIImages, tmp_path: Path
) -> None:
    scene, truth = subject_scene(512)
    buffer = io.BytesIO()
    scene.save(buffer, format="PNG")
    # The provider answers with the scene: a saturated shape on texture, with its exact mask.
    fake_openai.fail_next = [
        (200, {"created": 1, "data": [{"b64_json": base64.b64encode(buffer.getvalue()).decode()}]})
    ]
    await host.start()
    await generate(client, host, prompt="a red ball on a tiled floor")
    await shown_image_id(host)
    await host.frame.locator("#select-subject").click()
    await until(
        lambda: _status_has(host, "Subject selected"),
        "the subject mask",
        timeout_s=60,
        host=host,
    )
    assert (
        "segment_image",
        {"image": f"imagegen://images/{await shown_image_id(host)}", "mode": "foreground"},
    ) in host.calls
    screenshot(await host.page.screenshot(full_page=True), tmp_path / "subject.png")
    await host.frame.locator("#prompt").fill("make the ball blue")
    before = len(fake_openai.requests)
    await host.frame.locator("#edit").click()
    await until(lambda: _edit_arrived(fake_openai, before), "the edit to reach the provider")
    [mask_part] = [part for part in fake_openai.requests[-1].files() if part.name == "mask"]
    with Image.open(io.BytesIO(mask_part.data)) as mask:
        edit_area = Image.eval(mask.getchannel("A"), lambda value: 255 - value)
        assert iou(edit_area, truth) > 0.9


async def _status_has(host: StudioHost, text: str) -> bool:
    return text in await host.frame.locator("#status").inner_text()


async def test_the_history_grid_pages_through_60_images(
    client: Client, host: StudioHost, server_env: dict[str, str], tmp_path: Path
) -> None:
    await fill_history(Path(server_env["IMAGEGEN_STORE_DIR"]), 60)
    await host.start()
    await host.frame.locator("#show-history").click()
    thumbs = host.frame.locator("#grid .thumb")
    more = host.frame.locator("#more")
    await until(lambda: _count_is(thumbs, 24), "the first page")
    await more.click()
    await until(lambda: _count_is(thumbs, 48), "the second page")
    await more.click()
    await until(lambda: _count_is(thumbs, 60), "the last page")
    assert not await more.is_visible()
    titles = [await thumbs.nth(index).get_attribute("title") for index in (0, 59)]
    assert titles == ["picture 59", "picture 0"]
    screenshot(await host.page.screenshot(full_page=True), tmp_path / "history.png")
    await thumbs.nth(10).click()  # click-through to one image
    await until(lambda: _facts_have(host, "picture 49"), "the chosen image")


async def _count_is(locator: Any, count: int) -> bool:
    return bool(await locator.count() == count)


async def test_one_click_actions_run_their_tools_and_show_what_they_made(
    client: Client, host: StudioHost, fake_openai: FakeOpenAIImages, tmp_path: Path
) -> None:
    fake_openai.output_size = (256, 256)  # small, so the local upscaler is quick
    await host.start(capabilities={"updateModelContext": {"text": {}}})
    made = await generate(client, host, prompt="a lighthouse")
    first = made["images"][0]["id"]
    await shown_image_id(host)
    frame = host.frame

    await frame.locator("#variations").click()
    await until(lambda: _shown_other_than(host, first), "the variation")
    assert last_call(host, "generate_image") == {
        "prompt": "a lighthouse",
        "provider": "openai",
        "model": "gpt-image-2.6-sunburst",
    }
    variation = await shown_image_id(host)
    # The model learns what the user made here (the host gives it the text with the next turn).
    told = await host.page.evaluate("window.modelContext.at(-1).content[0].text")
    assert told == (
        f"In the image studio the user made a variation of imagegen://images/{first} with generate_image,"
        f" which made imagegen://images/{variation}."
    )

    await frame.locator("#upscale").click()
    await until(lambda: _facts_have(host, "512 × 512"), "the upscaled image", host=host)
    assert last_call(host, "upscale_image") == {"image": f"imagegen://images/{variation}"}
    upscaled = await shown_image_id(host)
    assert "Made from" in await frame.locator("#lineage-parents").inner_text()
    assert await frame.locator("#parents .thumb").get_attribute("data-id") == variation

    await frame.locator("#cutout").click()
    strip = frame.locator("#result-strip .thumb img")
    await until(lambda: _count_is(strip, 2), "the mask and the cut-out, each with its preview", host=host)
    assert last_call(host, "segment_image") == {
        "image": f"imagegen://images/{upscaled}",
        "mode": "foreground",
        "cutout": True,
    }

    mask_shown = await shown_image_id(host)  # the cut-out result opens on its mask
    await frame.locator("#describe").click()
    answer = frame.locator("#answer")
    await until(answer.is_visible, "the description", host=host)
    assert (await answer.inner_text()).strip() == fake_openai.chat.answer
    assert last_call(host, "describe_image") == {"images": [f"imagegen://images/{mask_shown}"]}
    screenshot(await host.page.screenshot(full_page=True), tmp_path / "actions.png")

    # Keyboard: the tools have shortcuts, and Ctrl+Z undoes a stroke.
    await frame.locator("#stage").click()  # a click paints one dab with the brush
    await host.page.keyboard.press("e")
    assert await frame.locator("[data-tool=eraser]").get_attribute("aria-pressed") == "true"
    painted = "(() => { const m = document.getElementById('mask'); const d = m.getContext('2d')"
    painted += ".getImageData(0, 0, m.width, m.height).data; for (let i = 3; i < d.length; i += 4)"
    painted += " if (d[i]) return true; return false; })()"
    assert await frame.locator("body").evaluate(f"() => {painted}")
    await host.page.keyboard.press("Control+z")
    assert not await frame.locator("body").evaluate(f"() => {painted}")


def last_call(host: StudioHost, tool: str) -> dict[str, Any]:
    """The arguments of the app's last call to `tool`."""
    return [arguments for name, arguments in host.calls if name == tool][-1]


async def _shown_other_than(host: StudioHost, image_id: str) -> bool:
    if not await host.frame.locator("#facts dd").count():
        return False
    return await host.frame.locator("#facts dd").last.inner_text() != image_id


async def _facts_have(host: StudioHost, text: str) -> bool:
    viewer = host.frame.locator("#viewer")
    return await viewer.is_visible() and text in await host.frame.locator("#facts").inner_text()


async def test_download_hands_the_signed_link_to_the_host(
    server_env: dict[str, str], fake_openai: FakeOpenAIImages, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a public URL each image has a signed download link; the sandboxed app cannot download
    itself, so it asks the host to open the link (`ui/open-link`)."""
    monkeypatch.setenv("IMAGEGEN_PUBLIC_URL", "http://127.0.0.1:9/mcp")
    async with (
        Client(build_server(load_settings()), extensions=[AppsHost()]) as connected,
        studio_page(connected) as page,
    ):
        host = StudioHost(page, connected)
        await host.start()
        made = await generate(connected, host, prompt="a lighthouse")
        await shown_image_id(host)
        await host.frame.locator("#download").click()
        await until(
            lambda: page.evaluate("window.openedLinks.length"), "the link to reach the host", host=host
        )
        [link] = await page.evaluate("window.openedLinks")
        assert link == made["images"][0]["download_url"]
        assert link.startswith("http://127.0.0.1:9/files/") and "signature=" in link
        assert host.network_requests() == [], "the app must not fetch the link itself"


async def test_download_asks_a_host_that_saves_files_to_save_the_full_size_image(
    client: Client, host: StudioHost, fake_openai: FakeOpenAIImages
) -> None:
    await host.start(capabilities={"downloadFile": {}})
    made = await generate(client, host, prompt="a lighthouse", size="1536x1024")
    await shown_image_id(host)
    await host.frame.locator("#download").click()
    await until(
        lambda: host.page.evaluate("window.downloads.length"), "the file to reach the host", host=host
    )
    [download] = await host.page.evaluate("window.downloads")
    [content] = download["contents"]
    resource = content["resource"]
    assert content["type"] == "resource" and resource["mimeType"] == "image/png"
    assert resource["uri"] == made["images"][0]["uri"]
    assert base64.b64decode(resource["blob"]) == fake_openai.images_sent[-1]  # the full-size file


async def test_rectangle_lasso_and_eraser_shape_the_mask(
    client: Client, host: StudioHost, fake_openai: FakeOpenAIImages
) -> None:
    await host.start()
    await generate(client, host, prompt="a lighthouse", size="1536x1024")
    await shown_image_id(host)
    frame = host.frame
    box = await frame.locator("#mask").bounding_box()
    assert box is not None

    def at(fx: float, fy: float) -> tuple[float, float]:
        return box["x"] + fx * box["width"], box["y"] + fy * box["height"]

    async def drag(points: list[tuple[float, float]]) -> None:
        await host.page.mouse.move(*at(*points[0]))
        await host.page.mouse.down()
        for point in points[1:]:
            await host.page.mouse.move(*at(*point), steps=8)
        await host.page.mouse.up()

    await frame.locator("[data-tool=rect]").click()
    await drag([(0.1, 0.1), (0.4, 0.5)])
    await frame.locator("[data-tool=lasso]").click()
    triangle = [(0.6, 0.2), (0.9, 0.2), (0.75, 0.6), (0.6, 0.2)]
    await drag(triangle)
    await frame.locator("[data-tool=eraser]").click()
    await frame.locator("#size").fill("10")
    await drag([(0.25, 0.05), (0.25, 0.55)])  # a thin cut through the rectangle
    await frame.locator("#prompt").fill("fill these")
    before = len(fake_openai.requests)
    await frame.locator("#edit").click()
    await until(lambda: _edit_arrived(fake_openai, before), "the edit to reach the provider", host=host)
    [mask_part] = [part for part in fake_openai.requests[-1].files() if part.name == "mask"]
    with Image.open(io.BytesIO(mask_part.data)) as mask:
        assert mask.size == (1536, 1024)
        edit = np.asarray(mask.getchannel("A")) < 128
    expected = Image.new("L", (1536, 1024), 0)
    draw = ImageDraw.Draw(expected)
    draw.rectangle((0.1 * 1536, 0.1 * 1024, 0.4 * 1536, 0.5 * 1024), fill=255)
    draw.polygon([(x * 1536, y * 1024) for x, y in triangle], fill=255)
    cut = 10 * 1536 / box["width"]
    draw.line([(0.25 * 1536, 0.05 * 1024), (0.25 * 1536, 0.55 * 1024)], fill=0, width=round(cut))
    truth = np.asarray(expected) > 127
    assert (edit & truth).sum() / (edit | truth).sum() > 0.95
    assert not edit[int(0.3 * 1024), int(0.25 * 1536)], "the eraser's cut is kept out of the edit area"


async def test_full_screen_is_asked_of_the_host(client: Client, host: StudioHost) -> None:
    await host.start()
    await generate(client, host, prompt="a lighthouse")
    await shown_image_id(host)
    button = host.frame.locator("#fullscreen")
    assert await button.inner_text() == "Full screen"  # the host offers fullscreen
    await button.click()
    await until(lambda: _text_is(button, "Exit full screen"), "full screen", host=host)
    await button.click()
    await until(lambda: _text_is(button, "Full screen"), "back inline", host=host)
    assert await host.page.evaluate("window.displayModes") == ["fullscreen", "inline"]


async def _text_is(locator: Any, text: str) -> bool:
    return bool(await locator.inner_text() == text)
