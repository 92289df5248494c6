"""The files a node publishes (spec §10.1), at the paths a bundle names them by.

Everything but checkpoints, rosters and evaluation counts is immutable and
cacheable; a bundle is an archive of exactly these files for one petition.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Iterator

from aiohttp import web

from fedpetition.core import bundle, tiles
from fedpetition.core.documents import EvaluationCounts, sign_evaluations
from fedpetition.core.errors import DecodeError
from fedpetition.node.app import NODE, SECURITY_HEADERS
from fedpetition.node.service import InputError, Node, PetitionView
from fedpetition.verify.archive import ZipBundleWriter

IMMUTABLE = "public, max-age=31536000, immutable"
MUTABLE = "no-cache"
BINARY = "application/octet-stream"


async def evaluations_document(node: Node, view: PetitionView) -> bytes:
    """The origin's signed evaluation counts (spec §3.6), as stored now."""
    counts = EvaluationCounts(view.record.petition_id,
                              await node.storage.evaluations(view.record.id), node.now())
    return sign_evaluations(counts, node.signer).encode()


def _files(node: Node, view: PetitionView, size: int, checkpoint: bytes, evaluations: bytes
           ) -> Iterator[tuple[str, bytes | None, str]]:
    """Every member of the petition's bundle at ``size``: (path, data or None, kind)."""
    petition_id = view.record.petition_id
    yield bundle.key_path(node.name), (str(node.signer.verifier_key()) + "\n").encode(), "key"
    for number, document in enumerate(view.record.versions, start=1):
        yield bundle.version_path(petition_id, number), document, "version"
    yield bundle.roster_path(petition_id), view.record.roster, "roster"
    yield bundle.evaluations_path(petition_id), evaluations, "evaluations"
    yield bundle.checkpoint_path(view.log.origin), checkpoint, "checkpoint"
    for coord in tiles.tiles_for_size(size):
        yield f"{view.log.origin}/{coord.path}", None, coord.path


async def _snapshot(node: Node, slug: str) -> tuple[PetitionView, int, bytes, int]:
    """(view, size, signed checkpoint, count) of one moment of a single-host petition's log.

    The sequencer replaces checkpoint, note and counts together with no await
    in between, so reading them here without awaiting gives one consistent state.
    A petition with several hosts has a bundle spanning their logs: the verifier
    assembles it from the live nodes (``fedpetition bundle``).
    """
    view = await node.petition(slug)
    if view.federated:
        raise InputError("this petition has several hosts: assemble its bundle from all of "
                         "them with `fedpetition bundle <petition URL>`", status=409,
                         code="federated")
    current = view.log
    return view, current.checkpoint.size, current.note, current.stats.count


async def key(request: web.Request) -> web.Response:
    node = request.app[NODE]
    return web.Response(text=str(node.signer.verifier_key()) + "\n", headers={
        "Cache-Control": MUTABLE})


async def version(request: web.Request) -> web.Response:
    node = request.app[NODE]
    view = await node.petition(request.match_info["slug"])
    try:
        number = int(request.match_info["number"])
    except ValueError:
        number = 0
    if not 1 <= number <= len(view.record.versions) or request.match_info["number"] != str(
            number):
        raise InputError("no such version", status=404, code="not_found")
    return web.Response(body=view.record.versions[number - 1], content_type=BINARY,
                        headers={"Cache-Control": IMMUTABLE})


async def roster(request: web.Request) -> web.Response:
    view = await request.app[NODE].petition(request.match_info["slug"])
    return web.Response(body=view.record.roster, content_type=BINARY,
                        headers={"Cache-Control": MUTABLE})


async def evaluations(request: web.Request) -> web.Response:
    """The origin's signed count of evaluations served per host, read now (spec §3.6)."""
    node = request.app[NODE]
    view = await node.petition(request.match_info["slug"])
    if not view.record.is_local:
        raise InputError("only the petition's origin serves evaluation counts", status=404,
                         code="not_found")
    return web.Response(body=await evaluations_document(node, view), content_type=BINARY,
                        headers={"Cache-Control": MUTABLE})


async def _log_view(request: web.Request) -> PetitionView:
    """The petition of a log path ``/log/<origin>/<slug>/...``, which this node hosts."""
    node = request.app[NODE]
    petition_id = f"{request.match_info['origin']}/{request.match_info['slug']}"
    record = await node.storage.petition_by_petition_id(petition_id)
    if record is None:
        raise InputError("this node hosts no log for that petition", status=404,
                         code="not_found")
    return await node.view_of(record)


async def checkpoint(request: web.Request) -> web.Response:
    """The log's latest checkpoint that met the witness policy, with its cosignatures."""
    view = await _log_view(request)
    return web.Response(body=view.log.published, content_type="text/plain", charset="utf-8",
                        headers={"Cache-Control": MUTABLE})


async def tile(request: web.Request) -> web.Response:
    node = request.app[NODE]
    view = await _log_view(request)
    path = "tile/" + request.match_info["path"]
    try:
        tiles.parse_path(path)
    except DecodeError as e:
        raise InputError(str(e), status=404, code="not_found") from e
    data = await node.storage.read_file(view.record.id, path)
    if data is None:
        raise InputError("no such tile", status=404, code="not_found")
    return web.Response(body=data, content_type=BINARY, headers={"Cache-Control": IMMUTABLE})


async def manifest(request: web.Request) -> web.Response:
    """The bundle's manifest for the current checkpoint (spec §10.2)."""
    node = request.app[NODE]
    view, size, note, count = await _snapshot(node, request.match_info["slug"])
    counts = await evaluations_document(node, view)
    members = tuple(path for path, _, _ in _files(node, view, size, note, counts))
    claims = bundle.Claims(count, {view.log.origin: count})
    body = bundle.Manifest(view.record.petition_id, members, claims).encode()
    return web.Response(body=body, content_type=BINARY, headers={"Cache-Control": MUTABLE})


async def download(request: web.Request) -> web.StreamResponse:
    """The petition's bundle: every file at one checkpoint, in one archive."""
    node = request.app[NODE]
    view, size, note, count = await _snapshot(node, request.match_info["slug"])
    # Read after the checkpoint: counts only grow, so they cover every entry it holds.
    counts = await evaluations_document(node, view)
    members = []
    spool = tempfile.SpooledTemporaryFile(max_size=8 << 20)  # noqa: SIM115 - closed below
    try:
        writer = ZipBundleWriter(spool)
        for path, data, tile_path in _files(node, view, size, note, counts):
            if data is None:
                data = await node.storage.read_file(view.record.id, tile_path)
                if data is None:
                    raise RuntimeError(f"log file {tile_path} is missing")
            await asyncio.to_thread(writer.add, path, data)
            members.append(path)
        claims = bundle.Claims(count, {view.log.origin: count})
        writer.add(bundle.MANIFEST, bundle.Manifest(view.record.petition_id, tuple(members),
                                                    claims).encode())
        writer.close()
        # Prepared here, before the security_headers middleware sees it: add them now.
        response = web.StreamResponse(headers={
            **SECURITY_HEADERS,
            "Content-Type": "application/zip",
            "Content-Disposition": f'attachment; filename="{view.record.slug}-{size}.zip"',
            "Cache-Control": MUTABLE,
        })
        response.content_length = spool.tell()
        await response.prepare(request)
        if request.method != "HEAD":  # a streamed body is not dropped for HEAD by aiohttp
            spool.seek(0)
            while chunk := spool.read(1 << 16):
                await response.write(chunk)
        await response.write_eof()
        return response
    finally:
        spool.close()


def setup(app: web.Application) -> None:
    app.router.add_get("/key", key)
    app.router.add_get("/petitions/{slug}/versions/{number}", version)
    app.router.add_get("/petitions/{slug}/hosts", roster)
    app.router.add_get("/petitions/{slug}/evaluations", evaluations)
    app.router.add_get("/petitions/{slug}/manifest", manifest)
    app.router.add_get("/petitions/{slug}/bundle.zip", download)
    app.router.add_get("/log/{origin}/{slug}/checkpoint", checkpoint)
    app.router.add_get(r"/log/{origin}/{slug}/tile/{path:.+}", tile)
