"""A host's software inventory: applying the software sections of reports.

Two steps, so a batch of reports costs a few statements, not a few per report:

1. :func:`plan` (per report, in memory): check a delta against the stored
   inventory, or diff a full list against it; compute the new canonical key
   list and its hash; raise :class:`InventoryConflict` (→ 409
   ``resync_required``) or :class:`InvalidInventory` (→ 422).
2. :func:`write` (per batch, once the report rows exist): delete the removed
   package rows, insert the added ones, move each host's ``HostInventory``
   forward and record the ``SoftwareChange`` history.

A host's stored keys are one canonical value (``HostInventory.package_keys``,
the very bytes ``inventory_hash`` hashes; PostgreSQL compresses it with lz4,
see migration 0009): a delta is checked and hashed without reading the ~1,500
package rows, and without decoding them either: the value is split into its
entries, the delta's keys are found by bisection (decoding ~11 entries each)
and the entries are joined again.  When the keys and the rows disagree (the
rows are the truth), a batch stops with :class:`OutOfStep`; on its own, a
delta then answers ``resync_required`` and a full inventory repairs both.
"""

from __future__ import annotations

import bisect
import hashlib
import logging
import uuid
import zlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import orjson
from sqlalchemy import delete, tuple_
from sqlmodel import Session, col, select

from agent.report import Package, PackageKey, SoftwareSection, package_key
from collector import bulk
from collector.models import HostInventory, HostPackage, SoftwareChange, utcnow

log = logging.getLogger(__name__)

_CHUNK = 500  # key tuples per statement (4 parameters each)


class InventoryConflict(Exception):
    """A software delta cannot be applied: the agent must send its full inventory
    (→ 409 ``resync_required``)."""


class InvalidInventory(Exception):
    """A full inventory that contradicts its own hash (resending it cannot help)."""


class OutOfStep(Exception):
    """The stored keys of ``host_ids`` disagree with their package rows."""

    def __init__(self, host_ids: Iterable[int]) -> None:
        self.host_ids = sorted(set(host_ids))
        super().__init__(f"stored package keys out of step for hosts {self.host_ids}")


def canonical(keys: Sequence[Sequence[str]]) -> bytes:
    """The canonical bytes of sorted, de-duplicated keys.

    Byte for byte ``agent.report.canonical_inventory`` (compact JSON, UTF-8,
    no ASCII escaping), with a faster encoder; tests hold them equal.
    """
    return orjson.dumps(keys)


@dataclass(frozen=True)
class StoredInventory:
    """Where a host's inventory stands, as applying a software section needs it
    (the columns of ``HostInventory`` it reads)."""

    host_id: int
    report_id: uuid.UUID
    package_count: int
    package_keys: bytes | None


@dataclass
class Plan:
    """What one report's software section does to its host's inventory."""

    host_id: int
    report_id: uuid.UUID
    collected_at: datetime
    received: SoftwareSection
    state: StoredInventory | None  # None: no inventory yet, this report is the baseline
    canonical: bytes
    digest: str
    package_count: int
    added: list[Package]
    removed: list[PackageKey]
    # Full reports: every package by key (to reconcile rows that are out of step).
    unique: dict[PackageKey, Package] | None = None
    full: SoftwareSection | None = None
    changes: list[tuple[str, str, str, str | None, str | None]] = field(default_factory=list)

    @property
    def baseline(self) -> bool:
        return self.state is None


def load_states(session: Session, host_ids: Iterable[int]) -> dict[int, StoredInventory]:
    """The inventories of ``host_ids`` (whose host rows the caller holds locked),
    locked too; their key lists read in binary (``bulk.fetch_rows``)."""
    ids = sorted(set(host_ids))
    if not ids:
        return {}
    query = (
        select(
            HostInventory.host_id,
            HostInventory.report_id,
            HostInventory.package_count,
            HostInventory.package_keys,
        )
        .where(col(HostInventory.host_id).in_(ids))
        .order_by(col(HostInventory.host_id))
        .with_for_update()
    )
    return {row[0]: StoredInventory(*row) for row in bulk.fetch_rows(session, query)}


def stored_canonical(state: StoredInventory) -> bytes | None:
    """The stored canonical list (written as is; zlib-compressed before migration
    0009); None when there is none or it cannot be read."""
    blob = state.package_keys
    if blob is None:
        return None
    blob = bytes(blob)
    if blob[:1] == b"[":
        return blob
    try:
        return zlib.decompress(blob)
    except zlib.error:
        return None


def stored_keys(session: Session, state: StoredInventory) -> list[list[str]]:
    """The inventory's sorted keys as ``[name, arch, version]`` lists (they compare
    like the key tuples): from the stored canonical list, else from the rows.

    The list is taken as written (sorted, distinct): a damaged one makes the
    result's hash differ, and the agent resends its full inventory."""
    blob = stored_canonical(state)
    if blob is not None:
        try:
            keys = orjson.loads(blob)
            if isinstance(keys, list):
                return keys
        except orjson.JSONDecodeError:
            pass
    if state.package_keys is not None:
        log.warning("host %s: unreadable package_keys; reading the rows", state.host_id)
    return row_keys(session, state.host_id)


# The canonical list is ``[["name","arch","version"],...]``: its entries are the
# bytes between ``[["`` / ``"],["`` / ``"]]``.  A quote inside a JSON string is
# always escaped, so ``"],["`` inside an entry takes a field that is exactly
# ``],[``: the pieces such a false separator cuts do not decode as keys
# (``ValueError``, and the rows are read instead), and a delta's result is
# checked against the agent's hash in any case.
_OPEN, _SEP, _CLOSE = b'[["', b'"],["', b'"]]'
# A delta with more changes than this is applied on the split list, not in place:
# each change in place copies the whole list, and beyond about 8 changes splitting
# it once costs less (1,500 entries).
_SPLICE_MAX = 8


def _has_shape(blob: bytes) -> bool:
    return blob == b"[]" or (
        len(blob) >= len(_OPEN) + len(_CLOSE) and blob.startswith(_OPEN) and blob.endswith(_CLOSE)
    )


def split_entries(blob: bytes) -> list[bytes] | None:
    """The entries of a canonical list; None when ``blob`` does not have its shape."""
    if not _has_shape(blob):
        return None
    if blob == b"[]":
        return []
    return blob[len(_OPEN) : -len(_CLOSE)].split(_SEP)


def join_entries(entries: Sequence[bytes]) -> bytes:
    """The canonical list of ``entries`` (the inverse of :func:`split_entries`)."""
    return _OPEN + _SEP.join(entries) + _CLOSE if entries else b"[]"


def entry_of(key: PackageKey) -> bytes:
    return orjson.dumps(key)[2:-2]


def key_of(entry: bytes) -> PackageKey:
    """The key an entry encodes; ``ValueError`` when it is not one."""
    key = orjson.loads(b'["' + entry + b'"]')
    if len(key) != 3 or not all(isinstance(part, str) for part in key):
        raise ValueError(f"not a package key: {entry[:80]!r}")
    return (key[0], key[1], key[2])


def _stored_entries(session: Session, state: StoredInventory) -> list[bytes]:
    blob = stored_canonical(state)
    entries = split_entries(blob) if blob is not None else None
    if entries is not None:
        return entries
    if state.package_keys is not None:
        log.warning("host %s: unreadable package_keys; reading the rows", state.host_id)
    return [entry_of((n, a, v)) for n, a, v in row_keys(session, state.host_id)]


def row_keys(session: Session, host_id: int) -> list[list[str]]:
    query = select(HostPackage.name, HostPackage.arch, HostPackage.version).where(
        HostPackage.host_id == host_id
    )
    return sorted([name, arch, version] for name, arch, version in set(session.execute(query)))


def plan(
    session: Session,
    state: StoredInventory | None,
    *,
    host_id: int,
    report_id: uuid.UUID,
    collected_at: datetime,
    software: SoftwareSection,
) -> Plan | None:
    """Check ``software`` against ``state`` and compute the new inventory; None when
    the section is not ``ok`` (nothing changes, it is evaluated as received).

    - ``full``: the first one is the baseline (no history rows); later ones are
      diffed against the stored inventory.
    - ``delta``: only on top of the inventory of ``base_report_id``, strictly
      (removed packages present, added ones absent), and the result must match
      ``inventory_hash``.
    """
    if software.status != "ok":
        return None
    if software.mode == "delta":
        return _plan_delta(session, state, host_id, report_id, collected_at, software)
    unique = {package_key(p): p for p in software.packages}
    ordered = sorted(unique)
    blob = canonical(ordered)
    digest = hashlib.sha256(blob).hexdigest()
    if software.inventory_hash is not None and software.inventory_hash != digest:
        raise InvalidInventory(
            f"inventory_hash {software.inventory_hash} does not match the packages "
            f"of the report ({digest})"
        )
    current = _key_set(session, state)
    return Plan(
        host_id=host_id,
        report_id=report_id,
        collected_at=collected_at,
        received=software,
        state=state,
        canonical=blob,
        digest=digest,
        package_count=len(ordered),
        added=[unique[k] for k in ordered if k not in current],
        removed=sorted(current - unique.keys()),
        unique=unique,
        full=full_section(software, [unique[k] for k in ordered], digest),
    )


def _key_set(session: Session, state: StoredInventory | None) -> set[PackageKey]:
    if state is None:
        return set()
    try:
        return {(name, arch, version) for name, arch, version in stored_keys(session, state)}
    except (TypeError, ValueError):  # stored keys of the wrong shape: the rows are the truth
        log.warning("host %s: malformed package_keys; reading the rows", state.host_id)
        return {(name, arch, version) for name, arch, version in row_keys(session, state.host_id)}


def _plan_delta(
    session: Session,
    state: StoredInventory | None,
    host_id: int,
    report_id: uuid.UUID,
    collected_at: datetime,
    software: SoftwareSection,
) -> Plan:
    if state is None or software.base_report_id != state.report_id:
        have = f"report {state.report_id}" if state else "no inventory yet"
        raise InventoryConflict(
            f"software delta is relative to report {software.base_report_id}, but the "
            f"collector holds {have}; send the full inventory"
        )
    try:
        blob = stored_canonical(state)
        changes = len(software.added) + len(software.removed)
        if blob is not None and _has_shape(blob) and changes <= _SPLICE_MAX:
            blob, removed = _splice_delta(blob, software)
            count = state.package_count + len(software.added) - len(removed)
        else:
            entries, removed = _apply_delta(_stored_entries(session, state), software)
            blob, count = join_entries(entries), len(entries)
    except ValueError:  # stored keys of the wrong shape: the rows are the truth
        log.warning("host %s: malformed package_keys; reading the rows", host_id)
        rows = [entry_of((n, a, v)) for n, a, v in row_keys(session, host_id)]
        entries, removed = _apply_delta(rows, software)
        blob, count = join_entries(entries), len(entries)
    digest = hashlib.sha256(blob).hexdigest()
    if software.inventory_hash != digest:
        raise InventoryConflict(
            f"inventory hash mismatch after applying the delta (agent "
            f"{software.inventory_hash}, collector {digest}); send the full inventory"
        )
    return Plan(
        host_id=host_id,
        report_id=report_id,
        collected_at=collected_at,
        received=software,
        state=state,
        canonical=blob,
        digest=digest,
        package_count=count,
        added=list(software.added),
        removed=removed,
    )


def _apply_delta(
    entries: list[bytes], software: SoftwareSection
) -> tuple[list[bytes], list[PackageKey]]:
    """Remove and add a delta's packages in the sorted ``entries``, strictly;
    ``ValueError`` when an entry met on the way is not a key."""
    removed: list[PackageKey] = []
    for package in software.removed:
        key = package_key(package)
        at = bisect.bisect_left(entries, key, key=key_of)
        if at == len(entries) or key_of(entries[at]) != key:
            raise _not_installed(key)
        del entries[at]
        removed.append(key)
    for package in software.added:
        key = package_key(package)
        at = bisect.bisect_left(entries, key, key=key_of)
        if at < len(entries) and key_of(entries[at]) == key:
            raise _already_installed(key)
        entries.insert(at, entry_of(key))
    return entries, removed


def _splice_delta(blob: bytes, software: SoftwareSection) -> tuple[bytes, list[PackageKey]]:
    """:func:`_apply_delta` on the canonical list itself: each key is found by
    bisection over its bytes and its entry cut out or put in, without splitting the
    ~1,500 entries and joining them again.  ``ValueError`` as there."""
    removed: list[PackageKey] = []
    for package in software.removed:
        key = package_key(package)
        start, end, found = _locate(blob, key)
        if not found:
            raise _not_installed(key)
        if start == len(_OPEN) and end == len(blob) - len(_CLOSE):
            blob = b"[]"  # the only entry
        elif end == len(blob) - len(_CLOSE):
            blob = blob[: start - len(_SEP)] + blob[end:]  # the last one, and its separator
        else:
            blob = blob[:start] + blob[end + len(_SEP) :]
        removed.append(key)
    for package in software.added:
        key = package_key(package)
        at, _, found = _locate(blob, key)
        if found:
            raise _already_installed(key)
        entry = entry_of(key)
        if blob == b"[]":
            blob = _OPEN + entry + _CLOSE
        elif at == len(blob) - len(_CLOSE):
            blob = blob[:at] + _SEP + entry + blob[at:]  # after the last one
        else:
            blob = blob[:at] + entry + _SEP + blob[at:]
    return blob, removed


def _locate(blob: bytes, key: PackageKey) -> tuple[int, int, bool]:
    """Bisection over the bytes of a canonical list: ``(start, end, True)`` of the
    entry of ``key``, else ``(at, at, False)`` where it would go (decoding ~11
    entries of 1,500).  ``ValueError`` when an entry met on the way is not a key."""
    # [lo, hi) holds the entries still in question, whole, with their separators.
    lo, hi = len(_OPEN), len(blob) - len(_CLOSE)
    at = hi  # the start of the first entry known to come after ``key``; else the end
    while lo < hi:
        before = blob.rfind(_SEP, lo, (lo + hi) // 2)
        start = lo if before < 0 else before + len(_SEP)
        end = blob.find(_SEP, start, hi)
        if end < 0:
            end = hi
        found = key_of(blob[start:end])
        if found == key:
            return start, end, True
        if found < key:
            lo = end + len(_SEP)
        else:
            at, hi = start, start - len(_SEP)
    return at, at, False


def _not_installed(key: PackageKey) -> InventoryConflict:
    return InventoryConflict(
        f"software delta does not apply: removed package {key} is not installed"
    )


def _already_installed(key: PackageKey) -> InventoryConflict:
    return InventoryConflict(
        f"software delta does not apply: added package {key} is already installed"
    )


def classify_changes(
    added: Iterable[Package], removed: Iterable[PackageKey]
) -> list[tuple[str, str, str, str | None, str | None]]:
    """``(change, name, arch, old_version, new_version)`` rows of a delta.

    Per name+arch, removed and added versions are paired as ``upgraded``
    (sorted, so a single version change is one row); what is left over is
    ``installed`` or ``removed``.  "upgraded" means "version changed": a
    downgrade is recorded the same way, with both versions.
    """
    adds: dict[tuple[str, str], list[str]] = defaultdict(list)
    rems: dict[tuple[str, str], list[str]] = defaultdict(list)
    for p in added:
        adds[(p.name, p.arch or "")].append(p.version)
    for name, arch, version in removed:
        rems[(name, arch)].append(version)
    rows: list[tuple[str, str, str, str | None, str | None]] = []
    for name, arch in sorted(adds.keys() | rems.keys()):
        new, old = sorted(adds[(name, arch)]), sorted(rems[(name, arch)])
        rows += [("upgraded", name, arch, o, n) for o, n in zip(old, new, strict=False)]
        rows += [("installed", name, arch, None, n) for n in new[len(old) :]]
        rows += [("removed", name, arch, o, None) for o in old[len(new) :]]
    return rows


def write(session: Session, plans: Sequence[Plan], *, repair: bool) -> None:
    """Apply ``plans`` (one per host; their report rows exist) in a few statements.

    Removed rows are deleted by key; a host whose rows do not match its
    removed keys is out of step.  With ``repair`` (a report stored on its own)
    a full inventory then rebuilds the diff from the rows and a delta raises
    :class:`InventoryConflict`; without it the batch raises :class:`OutOfStep`
    and the caller stores its reports one by one.
    """
    if not plans:
        return
    expected = {p.host_id: set(p.removed) for p in plans}
    deleted: dict[int, set[PackageKey]] = defaultdict(set)
    wanted = [(p.host_id, *key) for p in plans for key in p.removed]
    key_columns = tuple_(
        col(HostPackage.host_id),
        col(HostPackage.name),
        col(HostPackage.arch),
        col(HostPackage.version),
    )
    for start in range(0, len(wanted), _CHUNK):
        statement = (
            delete(HostPackage)
            .where(key_columns.in_(wanted[start : start + _CHUNK]))
            .returning(HostPackage.host_id, HostPackage.name, HostPackage.arch, HostPackage.version)
        )
        # On the connection: no ORM bulk-delete bookkeeping (no package is loaded).
        for host_id, name, arch, version in session.connection().execute(statement):
            deleted[host_id].add((name, arch, version))
    stale = [p for p in plans if deleted.get(p.host_id, set()) != expected[p.host_id]]
    if stale:
        if not repair:
            raise OutOfStep(p.host_id for p in stale)
        for p in stale:
            _repair(session, p, deleted.get(p.host_id, set()))

    rows = [
        {
            "host_id": p.host_id,
            "name": package.name,
            "arch": package.arch or "",
            "version": package.version,
            "installed_at": package.installed_at,
            "seen_since": p.collected_at,
            "report_id": p.report_id,
        }
        for p in plans
        for package in p.added
    ]
    bulk.insert_rows(session, HostPackage, rows)

    now = utcnow()
    history: list[dict[str, object]] = []
    moved: list[dict[str, object]] = []
    for p in plans:
        values: dict[str, object] = {
            "report_id": p.report_id,
            "collected_at": p.collected_at,
            "inventory_hash": p.digest,
            "package_keys": p.canonical,
            "manager": p.received.manager,
            "package_count": p.package_count,
            "updated_at": now,
        }
        if p.state is None:  # the baseline
            session.add(
                HostInventory(
                    host_id=p.host_id,
                    baseline_report_id=p.report_id,
                    baseline_collected_at=p.collected_at,
                    **values,  # type: ignore[arg-type]
                )
            )
            continue
        moved.append({"host_id_": p.host_id, **values})
        p.changes = classify_changes(p.added, p.removed)
        history += [
            {
                "host_id": p.host_id,
                "report_id": p.report_id,
                "collected_at": p.collected_at,
                "change": change,
                "name": name,
                "arch": arch,
                "old_version": old,
                "new_version": new,
            }
            for change, name, arch, old, new in p.changes
        ]
    bulk.update_rows(session, _MOVE_INVENTORY, moved)  # one statement for them all
    bulk.insert_rows(session, SoftwareChange, history)


_MOVE_INVENTORY = bulk.update_by_key(
    HostInventory.__table__,  # type: ignore[attr-defined]
    "host_id",
    (
        "report_id",
        "collected_at",
        "inventory_hash",
        "package_keys",
        "manager",
        "package_count",
        "updated_at",
    ),
)


def _repair(session: Session, p: Plan, deleted: set[PackageKey]) -> None:
    """The rows of ``p``'s host disagree with its stored keys: a delta cannot
    apply (the agent resends its full inventory); a full one rebuilds its diff
    from the rows themselves."""
    if p.unique is None:
        missing = sorted(set(p.removed) - deleted)
        raise InventoryConflict(
            f"the stored inventory is out of step ({missing[0] if missing else p.removed}"
            " is not stored); send the full inventory"
        )
    log.warning("host %s: stored package keys out of step; reconciling", p.host_id)
    query = select(HostPackage.id, HostPackage.name, HostPackage.arch, HostPackage.version).where(
        HostPackage.host_id == p.host_id
    )
    rows = {(name, arch, version): row_id for row_id, name, arch, version in session.execute(query)}
    extra = sorted(rows.keys() - p.unique.keys())
    ids = [rows[k] for k in extra]
    for start in range(0, len(ids), 1000):
        chunk = ids[start : start + 1000]
        session.execute(delete(HostPackage).where(col(HostPackage.id).in_(chunk)))
    p.added = [p.unique[k] for k in sorted(p.unique.keys() - rows.keys())]
    p.removed = sorted(deleted | set(extra))


def full_section(
    software: SoftwareSection, packages: list[Package], digest: str
) -> SoftwareSection:
    return software.model_copy(
        update={
            "mode": "full",
            "packages": packages,
            "added": [],
            "removed": [],
            "base_report_id": None,
            "inventory_hash": digest,
        }
    )


def section_loader(session: Session, p: Plan) -> Callable[[], SoftwareSection]:
    """The full inventory after ``p`` (for checks that read the software section),
    built only when called: from the report itself, or from the host's rows
    before ``p`` is written plus its changes."""

    def load() -> SoftwareSection:
        if p.full is not None:
            return p.full
        gone = set(p.removed)
        packages = [
            Package.model_construct(
                name=name, version=version, arch=arch or None, installed_at=installed_at
            )
            for name, arch, version, installed_at in session.execute(
                select(
                    HostPackage.name,
                    HostPackage.arch,
                    HostPackage.version,
                    HostPackage.installed_at,
                ).where(HostPackage.host_id == p.host_id)
            )
            if (name, arch, version) not in gone
        ]
        packages += p.added
        packages.sort(key=package_key)  # Python's order, as the agent sorts (not the DB's)
        p.full = full_section(p.received, packages, p.digest)
        return p.full

    return load
