"""The model hub on a node: repositories, versions and files, moved with
progress bars and checked by content id."""

from __future__ import annotations

import os
import uuid
from typing import TYPE_CHECKING, Optional, Sequence
from urllib.parse import quote

import blake3
from tqdm.auto import tqdm

from . import auth, cid
from .errors import VerificationError

if TYPE_CHECKING:
    from .chain import Chain
    from .node import Node

#: The model registry: names, owners, versions and files, on chain.
MODEL_REGISTRY = "0x00000000000000000000000000000000000000f9"

_CHUNK = 1 << 20


def _keccak_file(path: str) -> bytes:
    from Crypto.Hash import keccak

    h = keccak.new(digest_bits=256)
    with open(path, "rb") as f:
        while block := f.read(_CHUNK):
            h.update(block)
    return h.digest()


class _Multipart:
    """A one-file multipart body streamed from disk, with its length known
    up front (so the node sees Content-Length) and a progress bar."""

    def __init__(self, path: str, name: str, bar: Optional[tqdm]):
        self.boundary = "gradnet-" + uuid.uuid4().hex
        self.head = (
            f"--{self.boundary}\r\n"
            f'Content-Disposition: form-data; name="file"; filename="{name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        self.tail = f"\r\n--{self.boundary}--\r\n".encode()
        self.size = os.path.getsize(path)
        self.path = path
        self.bar = bar

    def __len__(self) -> int:
        return len(self.head) + self.size + len(self.tail)

    def __iter__(self):
        yield self.head
        with open(self.path, "rb") as f:
            while block := f.read(_CHUNK):
                if self.bar is not None:
                    self.bar.update(len(block))
                yield block
        yield self.tail

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"


class Hub:
    """Repositories (``create``, ``get``, ``list``), versions (``version``,
    ``versions``), files (``upload``, ``files``, ``download``) and ownership
    (``add_collaborator``, ``remove_collaborator``, ``transfer``)."""

    def __init__(self, node: "Node"):
        self.node = node

    def create(self, name: str, description: str = "", task: str = "", license: str = "",
               tags: Sequence[str] = ()) -> dict:
        """Creates repository ``name``, owned by the signing account."""
        body = {"name": name, "description": description, "task": task, "license": license, "tags": list(tags)}
        return self.node.write("POST", "/api/v0/models", body)

    def get(self, name: str) -> dict:
        """``{repo, versions, on_chain}``."""
        return self.node.get(f"/api/v0/models/{quote(name)}")

    def list(self) -> list[dict]:
        return self.node.get("/api/v0/models")

    def version(self, name: str, notes: str = "", major: bool = False) -> str:
        """Publishes the next version (1.00, 1.01, … or 2.00 with ``major``); its version string."""
        v = self.node.write("POST", f"/api/v0/models/{quote(name)}/versions", {"notes": notes, "is_major": major})
        return v["versionString"]

    def versions(self, name: str) -> list[dict]:
        return self.node.get(f"/api/v0/models/{quote(name)}/versions")

    def files(self, name: str, version: str) -> list[dict]:
        return self.node.get(f"/api/v0/models/{quote(name)}/versions/{quote(version)}/files")

    def add_collaborator(self, name: str, account: str) -> dict:
        return self.node.write("POST", f"/api/v0/models/{quote(name)}/collaborators", {"account": account})

    def remove_collaborator(self, name: str, account: str) -> dict:
        return self.node.write("DELETE", f"/api/v0/models/{quote(name)}/collaborators/{account}")

    def transfer(self, name: str, account: str) -> dict:
        return self.node.write("POST", f"/api/v0/models/{quote(name)}/owner", {"account": account})

    def usage(self, account: str) -> dict:
        """``{account, bytes_stored, quota_bytes}`` on this node."""
        return self.node.get(f"/api/v0/accounts/{account}")

    def upload(self, name: str, version: str, path: str, file_name: Optional[str] = None,
               progress: bool = True) -> dict:
        """Streams a file into a version; ``{name, cid, size, runtime}``. The
        node's content id is checked against the file's."""
        file_name = file_name or os.path.basename(path)
        route = f"/api/v0/models/{quote(name)}/versions/{quote(version)}/files?name={quote(file_name)}"
        return self._upload(route, path, file_name, progress)

    def upload_blob(self, path: str, file_name: Optional[str] = None, progress: bool = True) -> dict:
        """Stores a file by content id alone (for a version published on chain)."""
        file_name = file_name or os.path.basename(path)
        return self._upload(f"/api/v0/blobs?name={quote(file_name)}", path, file_name, progress)

    def _upload(self, route: str, path: str, file_name: str, progress: bool) -> dict:
        with open(path, "rb") as f:
            want = cid.of_file(f)
        headers: dict[str, str] = {}
        if self.node.session:
            headers["Authorization"] = f"Bearer {self.node.session}"
        elif self.node.key:
            digest = _keccak_file(path)
            headers.update(auth.sign_request(self.node.key, self.node.chain_id, "POST", route, digest))
            headers[auth.BODY_HASH_HEADER] = "0x" + digest.hex()
        size = os.path.getsize(path)
        bar = tqdm(total=size, unit="B", unit_scale=True, desc=f"upload {file_name}", disable=not progress)
        try:
            body = _Multipart(path, file_name, bar)
            headers["Content-Type"] = body.content_type
            # a sized iterable: sent with its Content-Length, not chunked
            out = self.node._send("POST", route, data=body, headers=headers).json()
        finally:
            bar.close()
        if out.get("cid") != want:
            raise VerificationError(f"the node stored {out.get('cid')} for {file_name}, whose bytes hash to {want}")
        return out

    def publish(self, chain: "Chain", name: str, paths: Sequence[str], notes: str = "",
                major: bool = False, description: str = "", progress: bool = True) -> dict:
        """Publishes files under a name on chain, as a network shares names:
        the bytes go to this node by content id (``POST /api/v0/blobs``,
        other nodes fetch them from it), the name, owner and version to the
        model registry at ``0x…f9`` (``createRepository`` the first time,
        then ``publishVersion``), sent by ``chain``'s account. Returns
        ``{name, version, files}``."""
        from eth_abi import decode as abi_decode
        from eth_abi import encode as abi_encode
        from eth_utils import function_signature_to_4byte_selector as sel
        from web3.exceptions import ContractLogicError

        files = []
        for path in paths:
            up = self.upload_blob(path, progress=progress)
            files.append((up["name"], up["cid"], up["size"]))
        repo_t = "(string,string,address,address[],uint64,string[])"
        get = sel("getRepository(string)") + abi_encode(["string"], [name])
        try:
            chain.w3.eth.call({"to": MODEL_REGISTRY, "data": get})
        except ContractLogicError:
            create = sel("createRepository(string,string)") + abi_encode(["string", "string"], [name, description])
            chain.send(MODEL_REGISTRY, create)
        publish = sel("publishVersion(string,bool,string,(string,string,uint64)[])") + abi_encode(
            ["string", "bool", "string", "(string,string,uint64)[]"], [name, major, notes, files])
        chain.send(MODEL_REGISTRY, publish, gas=1_000_000 + 200_000 * len(files))
        (repo,) = abi_decode([repo_t], bytes(chain.w3.eth.call({"to": MODEL_REGISTRY, "data": get})))
        return {"name": name, "version": repo[5][-1],
                "files": [{"name": n, "cid": c, "size": z} for n, c, z in files]}

    def download(self, model: str, out: str, progress: bool = True) -> str:
        """Downloads a blob (content id, or ``repo@version/file``) to ``out``
        through a ``.part`` file, checking the bytes against the content id;
        the content id."""
        want = model if cid.looks_like(model) else self.node.resolve(model)
        cid.parse(want)
        r = self.node._send("GET", f"/api/v0/blobs/{want}", stream=True)
        total = int(r.headers.get("Content-Length", 0)) or None
        part = out + ".part"
        h = blake3.blake3()
        bar = tqdm(total=total, unit="B", unit_scale=True, desc=f"download {os.path.basename(out)}",
                   disable=not progress)
        try:
            with open(part, "wb") as f:
                for block in r.iter_content(_CHUNK):
                    h.update(block)
                    f.write(block)
                    bar.update(len(block))
                f.flush()
                os.fsync(f.fileno())
        finally:
            bar.close()
        got = cid.from_digest(h.digest())
        if got != want:
            os.remove(part)
            raise VerificationError(f"downloaded bytes hash to {got}, not {want}; discarded")
        os.replace(part, out)
        return want

    def read(self, model: str) -> bytes:
        """A blob's bytes in memory, checked against its content id."""
        want = model if cid.looks_like(model) else self.node.resolve(model)
        data = self.node._send("GET", f"/api/v0/blobs/{want}").content
        got = cid.of(data)
        if got != want:
            raise VerificationError(f"downloaded bytes hash to {got}, not {want}")
        return data


