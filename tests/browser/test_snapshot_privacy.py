"""Job snapshots show no personal data: form fields are masked on screen, and the PNG is stored encrypted.

The autopilot books at web-tables for a traveler of the test's own; the snapshot taken with
the guest details filled in must show the fields painted over in Playwright's mask colour
(#FF00FF), the database must hold ciphertext, and the API must still serve a valid PNG.
"""

import secrets
import struct
import zlib
from datetime import date

from sqlalchemy import text

from tests.browser.support import JOBS, PROFILE, job, needs_chromium, run
from tests.conftest import Org, Server
from tests.sealed import clear_text_leaks

pytestmark = needs_chromium

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAGENTA = (255, 0, 255)


def pixels(png: bytes) -> tuple[int, int, list[bytes]]:
    """(width, channels, rows of RGB(A) bytes) of an 8-bit truecolour PNG, decoded with zlib alone."""
    assert png.startswith(PNG_SIGNATURE)
    pos, idat = len(PNG_SIGNATURE), b""
    width = height = channels = 0
    while pos < len(png):
        length, kind = struct.unpack(">I4s", png[pos:pos + 8])
        data = png[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", data[:10])
            assert depth == 8 and colour in (2, 6), (depth, colour)
            channels = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += data
    raw, stride, rows = zlib.decompress(idat), width * channels, []
    previous = bytearray(stride)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up, corner = previous[i], previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 0xFF
        rows.append(bytes(line))
        previous = line
    return width, channels, rows


def magenta_pixels(png: bytes) -> int:
    width, channels, rows = pixels(png)
    return sum(1 for row in rows for x in range(width) if tuple(row[x * channels:x * channels + 3]) == MAGENTA)


async def test_a_filled_in_form_is_masked_in_its_snapshot_and_stored_encrypted(
    server: Server, org: Org, day: date
) -> None:
    tag = secrets.token_hex(3)
    traveler = {**PROFILE, "last_name": f"Quillfeather{tag}", "email": f"zq.{tag}@sealed.example"}
    body = job("restaurant", day, providers=["web-tables"])
    body["profile"] = traveler
    done, _ = await run(org.agent, body)
    assert done["status"] == "paused_payment", done
    listed = (await org.agent.get(f"{JOBS}/{done['jobId']}/snapshots")).json()["snapshots"]
    filled = next(s for s in listed if s["step"] == "web-tables/details-filled")

    async with server.db.engine.connect() as conn:
        stored = {row.id: bytes(row.png) for row in await conn.execute(
            text("SELECT id, png FROM job_snapshots WHERE job_id = :job"), {"job": done["jobId"]})}
    assert set(stored) == {s["snapshotId"] for s in listed}
    for png in stored.values():
        assert not png.startswith(b"\x89PNG")
        assert not any(s.encode() in png for s in (traveler["last_name"], traveler["email"], traveler["phone"]))

    image = await org.agent.get(f"{JOBS}/{done['jobId']}/snapshots/{filled['snapshotId']}/image")
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    assert image.content.startswith(PNG_SIGNATURE) and image.content != stored[filled["snapshotId"]]
    # Each filled-in field (name, email, phone…) is a block of mask colour some thousands of pixels large.
    assert magenta_pixels(image.content) > 2000
    # Nor did the web site (the sandbox's tables in Errand's database) keep the guest in clear.
    assert await clear_text_leaks(server, [traveler["last_name"], traveler["email"]]) == []
