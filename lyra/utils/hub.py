"""Pretrained models named by a local folder or a Hugging Face hub id (``owner/name`` or ``owner/name@revision``).

:func:`resolve_pretrained` decides, before any weights are read, where ``from_pretrained`` will load from: the
folder; the hub (downloading into the normal Hugging Face cache); or that cache alone when the hub cannot be
reached (no network, ``HF_HUB_OFFLINE=1``). One short request (:data:`PROBE_TIMEOUT_S`) tells which, so a
machine without a network fails in seconds with one line that says how to get the files. ``huggingface_hub``
is imported only for hub ids.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lyra.errors import InputError, describe

# owner/name (huggingface_hub's repo id characters, no "--" or ".."), then an optional @branch, tag or commit
HUB_ID = re.compile(r"(?P<repo>[A-Za-z0-9](?:[\w.-]*[A-Za-z0-9])?/[A-Za-z0-9](?:[\w.-]*[A-Za-z0-9])?)"
                    r"(?:@(?P<revision>[\w.-]+(?:/[\w.-]+)*))?")
PROBE_TIMEOUT_S = 5.0  # seconds the hub may take to answer the probe (HF_HUB_ETAG_TIMEOUT overrides it)


@dataclass(frozen=True)
class Pretrained:
    """Where a model loads from: ``from_pretrained(ref.source, **ref.kwargs)``.

    Attributes:
        name: what the user gave (messages name it).
        source: a local folder or a hub repo id.
        kind: what the model is, for messages ("depth model").
        flag: the command-line option that takes it ("--depth-model").
        revision: hub branch, tag or commit (None: the default branch).
        local_files_only: no download: a folder, or a hub id served from the cache alone.
        hub_failure: why the hub was not asked (a hub id served from the cache), else None.
    """

    name: str
    source: str
    kind: str
    flag: str
    revision: str | None = None
    local_files_only: bool = True
    hub_failure: str | None = None

    @property
    def kwargs(self) -> dict[str, Any]:
        """``revision`` and ``local_files_only`` for ``from_pretrained``."""
        kw: dict[str, Any] = {"local_files_only": self.local_files_only}
        if self.revision is not None:
            kw["revision"] = self.revision
        return kw

    def unreachable(self, what: str) -> str:
        """One line: the hub could not be reached (``hub_failure``), ``what`` else went wrong, how to get the files."""
        rev = f" --revision {self.revision}" if self.revision else ""
        return (f"{self.kind} '{self.name}': the Hugging Face hub could not be reached ({self.hub_failure}) and "
                f"{what}; download it on a machine with a network (`hf download {self.source}{rev} --local-dir DIR`) "
                f"and pass {self.flag} DIR")


def parse_hub_id(name: str) -> tuple[str, str | None] | None:
    """``(repo_id, revision)`` of ``"owner/name[@revision]"``; None if ``name`` is not shaped like a hub id."""
    m = HUB_ID.fullmatch(name)
    if m is None or "--" in m["repo"] or ".." in m["repo"] or len(m["repo"]) > 96:
        return None
    return m["repo"], m["revision"]


def resolve_pretrained(name_or_path: str | os.PathLike, kind: str = "depth model", *, marker: str = "config.json",
                       flag: str = "--depth-model", error: type[InputError] = InputError) -> Pretrained:
    """A local folder holding ``marker``, else a hub id: from the hub if it answers, from the cache if not.

    Raises ``error`` (one line) for a missing folder (no network attempt), a folder without ``marker``, a hub
    id the hub does not know (or that is gated), and a hub id that neither the hub nor the cache can give.
    """
    name = os.fspath(name_or_path)
    path = Path(name).expanduser()
    if path.exists():
        if not path.is_dir():
            raise error(name, f"not a {kind} folder (a file)")
        if not (path / marker).is_file():
            raise error(name, f"not a {kind} folder (no {marker})")
        return Pretrained(name, str(path), kind, flag)
    hub_id = parse_hub_id(name)
    if hub_id is None:
        raise error(name, f"folder not found (give a local {kind} folder, or a Hugging Face model id: owner/name)")
    try:
        from huggingface_hub import constants, get_hf_file_metadata, hf_hub_url, try_to_load_from_cache
        from huggingface_hub.errors import (
            EntryNotFoundError,
            GatedRepoError,
            RepositoryNotFoundError,
            RevisionNotFoundError,
        )
    except ImportError as exc:
        raise error(name, f"a Hugging Face model id needs huggingface_hub ({exc}): pip install -e '.[hf]'") from exc
    repo, revision = hub_id
    if constants.HF_HUB_OFFLINE:
        failure = "HF_HUB_OFFLINE is set"
    else:
        timeout = constants.HF_HUB_ETAG_TIMEOUT if os.environ.get("HF_HUB_ETAG_TIMEOUT") else PROBE_TIMEOUT_S
        try:
            get_hf_file_metadata(hf_hub_url(repo, marker, revision=revision), timeout=timeout)
            return Pretrained(name, repo, kind, flag, revision, local_files_only=False)
        except GatedRepoError as exc:
            raise error(f"{kind} '{name}': gated on the Hugging Face hub ({describe(exc)}); accept its terms on "
                        f"https://huggingface.co/{repo} and log in (`hf auth login`)") from exc
        except (RepositoryNotFoundError, RevisionNotFoundError) as exc:
            raise error(f"{kind} '{name}': not a local folder, and no such model or revision on the Hugging Face "
                        f"hub ({describe(exc)}); a private one needs `hf auth login`") from exc
        except EntryNotFoundError as exc:
            raise error(f"{kind} '{name}': the Hugging Face model has no {marker} (not a {kind})") from exc
        except Exception as exc:  # noqa: BLE001 - no network, DNS, proxy, TLS, timeout, hub down: try the cache
            failure = describe(exc)
    ref = Pretrained(name, repo, kind, flag, revision, local_files_only=True, hub_failure=failure)
    if not isinstance(try_to_load_from_cache(repo, marker, revision=revision), str):
        raise error(ref.unreachable("it is neither a local folder nor in the Hugging Face cache"))
    return ref


@contextlib.contextmanager
def loading(ref: Pretrained, what: str, error: type[InputError] = InputError) -> Iterator[None]:
    """Around ``from_pretrained(ref...)``: a library's exception becomes ``error`` naming ``ref.name``.

    For a hub id served from the cache alone, the line also says how to get the files (an incomplete cache).
    Project errors (InputError) and MemoryError pass through.
    """
    try:
        yield
    except (InputError, MemoryError):
        raise
    except Exception as exc:  # noqa: BLE001 - loaders raise anything for a malformed or incomplete model
        if ref.hub_failure is not None:
            raise error(ref.unreachable(f"its copy in the cache cannot be loaded ({describe(exc)})")) from exc
        raise error(ref.name, f"{what} ({describe(exc)})") from exc
