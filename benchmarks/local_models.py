"""Print figures for the local provider on this CPU (issue: the embedded local provider).

Each measurement runs in a fresh process, so its peak RSS is that model's alone:

1. Segmentation (U²-Netp) of a 512x512 image: load, first call, warm median. Target: warm < 0.5 s.
2. Real-ESRGAN x4 of a 512x512 image (to 2048x2048), 128 px tiles. Target: < 8 s.
3. OCR (RapidOCR, PP-OCRv6) of an A4 page at 150 dpi with 10 lines, and full (30 lines).
   Target: warm < 1.5 s. Recognition costs ~50 ms a line on 2 cores, so a full page is slower.
4. The MediaPipe selfie model on 512x512, and the Lanczos fallback x4, for comparison.

Run after `mcp-imagegen models fetch`: `python benchmarks/local_models.py [--runs 5]`
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from PIL import Image

from mcp_imagegen.config import Settings, load_settings
from tests.local_scenes import detail_image, font, subject_scene

PAGE_LINES = 30


def page(lines: int = PAGE_LINES) -> Image.Image:
    """A4 at 150 dpi with `lines` lines of 30 px text (30 fill the page)."""
    from PIL import ImageDraw

    image = Image.new("RGB", (1240, 1754), "white")
    draw = ImageDraw.Draw(image)
    for line in range(lines):
        draw.text(
            (80, 80 + line * 54),
            f"Line {line + 1}: the quick brown fox pays invoice {4400 + line}.",
            fill="black",
            font=font(30),
        )
    return image


def measure(name: str, runs: int, settings: Settings) -> dict[str, Any]:
    """Runs inside the child process: load, first call, then warm calls."""
    threads = settings.local_threads
    started = time.perf_counter()
    call: Callable[[], object]
    if name == "segment":
        from mcp_imagegen.local.segmentation import U2NetP

        model = U2NetP(settings.models_dir, threads)
        image, _ = subject_scene(512)
        call = lambda: model.matte(image)  # noqa: E731
    elif name == "selfie":
        from mcp_imagegen.local.segmentation import SelfieSegmenter

        selfie = SelfieSegmenter(settings.models_dir, threads)
        image, _ = subject_scene(512)
        call = lambda: selfie.matte(image)  # noqa: E731
    elif name == "upscale":
        from mcp_imagegen.local.upscaling import RealEsrgan

        esrgan = RealEsrgan(settings.models_dir)
        source = detail_image(512)
        call = lambda: esrgan.upscale(source, 4)  # noqa: E731
    elif name == "lanczos":
        from mcp_imagegen.local.upscaling import lanczos

        source = detail_image(512)
        call = lambda: lanczos(source, 4)  # noqa: E731
    else:
        from mcp_imagegen.local.reading import TextReader

        reader = TextReader(settings.models_dir, threads)
        text = page(PAGE_LINES if name == "ocr" else 10)
        call = lambda: reader.read(text)  # noqa: E731
    load_s = time.perf_counter() - started
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        outcome = call()
        timings.append(time.perf_counter() - started)
    lines = len(outcome) if isinstance(outcome, list) else None
    return {
        "load_s": load_s,
        "first_s": timings[0],
        "warm_median_s": statistics.median(timings[1:]) if runs > 1 else timings[0],
        "peak_rss_mb": peak_rss_mb(),
        "lines_read": lines,
    }


def peak_rss_mb() -> float:
    """This process image's peak RSS: /proc's VmHWM where there is one (ru_maxrss also counts the
    parent's memory at fork on Linux), else ru_maxrss."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kilobytes = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:"))
    return kilobytes / 1024


TARGETS = {"segment": 0.5, "upscale": 8.0, "ocr": 1.5, "ocr-short": 1.5}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    settings = load_settings()
    if args.child:
        print(json.dumps(measure(args.child, args.runs, settings)))
        return
    print(
        f"models: {settings.models_dir}; threads per inference: {settings.local_threads}; "
        f"cores: {os.cpu_count()}"
    )
    for name, what in (
        ("segment", "U²-Netp mask, 512x512"),
        ("selfie", "MediaPipe selfie mask, 512x512"),
        ("upscale", "Real-ESRGAN x4, 512x512 -> 2048x2048"),
        ("lanczos", "Lanczos + sharpen x4, 512x512 -> 2048x2048"),
        ("ocr-short", "OCR, 1240x1754 page with 10 lines"),
        ("ocr", f"OCR, 1240x1754 page full of text ({PAGE_LINES} lines)"),
    ):
        runs = min(args.runs, 3) if name == "upscale" else args.runs
        done = subprocess.run(
            [sys.executable, __file__, "--child", name, "--runs", str(runs)],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "IMAGEGEN_MODELS_DIR": str(Path(settings.models_dir))},
        )
        figures = json.loads(done.stdout.strip().splitlines()[-1])
        target = f" (target < {TARGETS[name]} s)" if name in TARGETS else ""
        lines = f", {figures['lines_read']} lines read" if figures["lines_read"] is not None else ""
        print(
            f"{what}: load {figures['load_s']:.2f} s, first {figures['first_s']:.2f} s, "
            f"warm median {figures['warm_median_s']:.2f} s{target}, "
            f"peak RSS {figures['peak_rss_mb']:.0f} MB{lines}"
        )


if __name__ == "__main__":
    main()
