"""Accounting exports over real HTTP (werkzeug on a free port) and the `fabgate export`
command: invoices and usage with amounts, in JSON, plain CSV and French CSV."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from werkzeug.serving import make_server

from gateway.billing.exports import flavour
from gateway.billing.money import amount_text
from gateway.config import ApiToken, HubConfig
from gateway.hub.db import HubStore
from gateway.hub.events.ingest import ingest_envelopes
from gateway.hub.seed import import_seed
from gateway.hub.sessions import session_rows
from gateway.web import billing_api, create_app
from tests.support import builders
from tests.support.builders import session_events
from tests.support.harness import http_request
from tests.test_invoicing import (
    GROUPS,
    MACHINES,
    NOV,
    NOVEMBER_SESSIONS,
    TARIFFS,
    TZ,
    events_for,
    independent_amounts,
    make_store,
)

TOKEN = "compta-token-0123456789"


@dataclass
class Client:
    base: str
    db: Path

    def call(
        self, path: str, *, method: str = "GET", body: dict | None = None, token: str | None = TOKEN
    ) -> tuple[int, dict[str, str], bytes]:
        return http_request(self.base + path, method=method, body=body, token=token)

    def json(self, path: str, **kw: object) -> dict:
        status, _, body = self.call(path, **kw)  # type: ignore[arg-type]
        assert status == 200, body
        return json.loads(body)

    def text(self, path: str) -> str:
        status, headers, body = self.call(path)
        assert status == 200, body
        assert headers["Content-Type"].startswith("text/csv")
        return body.decode("utf-8")


def hub_config(tmp_path: Path, db: Path) -> HubConfig:
    return builders.hub_config(
        tmp_path,
        db,
        timezone=TZ,
        tokens=(ApiToken("compta", TOKEN),),
        groups=GROUPS,
        machines=MACHINES,
        tariffs=TARIFFS,
    )


@pytest.fixture
def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Client]:
    # The API refuses to close a month that has not ended: pin "now" to early December.
    monkeypatch.setattr(billing_api, "utcnow", lambda: datetime(2026, 12, 2, 9, tzinfo=UTC))
    db = tmp_path / "hub.sqlite"
    with make_store(db) as store:
        ingest_envelopes(store, events_for(NOVEMBER_SESSIONS), NOV)
    app = create_app(hub_config(tmp_path, db), store_factory=lambda: HubStore(db))
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield Client(f"http://127.0.0.1:{httpd.server_port}", db)
    finally:
        httpd.shutdown()
        thread.join(timeout=5)


def session_amounts(db: Path) -> dict[str, int]:
    """What each closed session costs, independently of any invoice."""
    with HubStore(db) as store:
        return independent_amounts(store)


def cents(text: str, fmt: str) -> int:
    """Parse an exported euro amount back to cents, exactly."""
    fl = flavour(fmt)
    assert re.fullmatch(rf"-?\d+{re.escape(fl.decimal)}\d\d", text), text
    return int(Decimal(text.replace(",", ".")) * 100)


# The French flavour's column names, as a French accountant reads them (docs/billing.md).
FRENCH = {
    "session_id": "Session",
    "member_name": "Membre",
    "machine_id": "Machine",
    "started_at": "Début",
    "duration_s": "Durée (min)",
    "billable_minutes": "Minutes facturées",
    "amount": "Montant (€)",
    "issued_at": "Date d'émission",
    "payer_name": "Payeur",
    "session_ids": "Identifiants des sessions",
    "sessions": "Sessions",
    "amount_ht": "Montant HT (€)",
    "total_ht": "Total HT (€)",
    "vat_rate": "Taux de TVA (%)",
}


def french_rows(text: str) -> list[dict[str, str]]:
    """The rows of a ``csv-fr`` file, by their French column names."""
    assert text.startswith("\ufeff")  # so that Excel reads UTF-8
    return list(csv.DictReader(io.StringIO(text[1:], newline=""), delimiter=";"))


def col(name: str, fmt: str) -> str:
    return FRENCH[name] if fmt == "csv-fr" else name


# -- invoices ----------------------------------------------------------------------------


def test_invoices_need_a_token(client: Client) -> None:
    for path in (
        "/api/v1/invoices?period=2026-11",
        "/api/v1/invoices/F2026-000001",
        "/api/v1/chain",
    ):
        status, headers, _ = client.call(path, token=None)
        assert status == 401 and headers["WWW-Authenticate"].startswith("Bearer")
    status, _, _ = client.call(
        "/api/v1/periods/2026-11/close",
        method="POST",
        body={"by": "x"},
        token="wrong-token-0123456789",
    )
    assert status == 401


def test_draft_invoices_as_json(client: Client) -> None:
    docs = client.json("/api/v1/invoices?period=2026-11&status=draft")["invoices"]
    assert {(d["kind"], d["payer"]["id"]) for d in docs} == {
        ("invoice", "m1"),
        ("invoice", "m3"),
        ("invoice", "lycee"),
    }
    assert all(d["status"] == "draft" and d["number"] is None for d in docs)
    alice = next(d for d in docs if d["payer"]["id"] == "m1")
    assert alice["total_ht"] == 3045 and alice["total_ttc"] == 3425
    assert {"rate": "0.10", "ht": 2295, "vat": 230} in alice["vat"]


@pytest.mark.parametrize("fmt", ["csv", "csv-fr"])
def test_invoice_lines_csv_totals_match_the_sessions_to_the_cent(client: Client, fmt: str) -> None:
    text = client.text(f"/api/v1/invoices?period=2026-11&format={fmt}&detail=lines")
    rows = (
        french_rows(text)
        if fmt == "csv-fr"
        else list(csv.DictReader(io.StringIO(text, newline="")))
    )
    billed: dict[str, int] = {}
    for r in rows:
        ids = r[col("session_ids", fmt)].split()
        assert int(r[col("sessions", fmt)]) == len(ids)
        for sid in ids:
            billed[sid] = 0
        billed[ids[0]] += cents(r[col("amount_ht", fmt)], fmt)  # line amount, counted once
    assert sum(billed.values()) == sum(session_amounts(client.db).values()) == 4795
    assert set(billed) == set(session_amounts(client.db))
    docs = client.text(f"/api/v1/invoices?period=2026-11&format={fmt}")
    doc_rows = (
        french_rows(docs)
        if fmt == "csv-fr"
        else list(csv.DictReader(io.StringIO(docs, newline="")))
    )
    assert sum(cents(r[col("total_ht", fmt)], fmt) for r in doc_rows) == 4795


def test_french_csv_conventions(client: Client) -> None:
    client.call("/api/v1/periods/2026-11/close", method="POST", body={"by": "Sophie"})
    text = client.text("/api/v1/invoices?period=2026-11&status=closed&format=csv-fr&detail=lines")
    assert "\r\n" in text and ";" in text.splitlines()[0]
    rows = french_rows(text)
    assert text.startswith("\ufeffNuméro;Type;Statut;Mois;Date d'émission;")
    assert rows and all(re.fullmatch(r"\d\d/\d\d/\d{4}", r["Date d'émission"]) for r in rows)
    cnc = next(r for r in rows if r["Machine"] == "cnc1")
    assert cnc["Montant HT (€)"] == "22,95" and cnc["Taux de TVA (%)"] == "0,10"
    assert cnc["Payeur"] == "Alice Martin"
    plain = list(
        csv.DictReader(
            io.StringIO(
                client.text("/api/v1/invoices?period=2026-11&format=csv&detail=lines"), newline=""
            )
        )
    )
    cnc_plain = next(r for r in plain if r["machine_id"] == "cnc1")
    assert cnc_plain["amount_ht"] == "22.95" and cnc_plain["vat_rate"] == "0.10"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d", cnc_plain["issued_at"])


def test_close_over_http_then_read_closed_documents(client: Client) -> None:
    status, _, body = client.call(
        "/api/v1/periods/2026-11/close", method="POST", body={"by": "Sophie"}
    )
    assert status == 200, body
    numbers = [d["number"] for d in json.loads(body)["documents"]]
    assert numbers == ["F2026-000001", "F2026-000002", "F2026-000003"]
    again = client.json("/api/v1/periods/2026-11/close", method="POST", body={"by": "x"})
    assert [d["number"] for d in again["documents"]] == numbers
    closed = client.json("/api/v1/invoices?period=2026-11&status=closed")["invoices"]
    assert [d["number"] for d in closed] == numbers
    assert client.json("/api/v1/invoices?period=2026-11&status=draft")["invoices"] == []
    one = client.json("/api/v1/invoices/F2026-000002")["invoice"]
    assert one == closed[1] and one["closed_by"] == "Sophie"
    assert client.call("/api/v1/invoices/F2026-999999")[0] == 404
    chain = client.json("/api/v1/chain")
    assert chain["intact"] and chain["head"] == {
        "number": "F2026-000003",
        "hash": closed[-1]["hash"],
    }


def test_closing_refuses_bad_requests(client: Client) -> None:
    status, _, body = client.call("/api/v1/periods/2026-13/close", method="POST", body={"by": "x"})
    assert status == 400 and json.loads(body)["parameter"] == "period"
    assert client.call("/api/v1/periods/2026-11/close", method="POST", body={})[0] == 400
    status, _, body = client.call("/api/v1/periods/2999-01/close", method="POST", body={"by": "x"})
    assert status == 400 and "not ended" in json.loads(body)["error"]
    with HubStore(client.db) as store:
        ingest_envelopes(
            store,
            session_events(
                "O1", datetime(2026, 10, 5, 10, tzinfo=UTC), 60, "m1", "laser1", seq=500
            ),
            NOV,
        )
    status, _, body = client.call("/api/v1/periods/2026-11/close", method="POST", body={"by": "x"})
    assert status == 409 and "2026-10" in json.loads(body)["error"]


@pytest.mark.parametrize(
    "query, param",
    [
        ("period=2026-1", "period"),
        ("period=2026-11&format=xls", "format"),
        ("period=2026-11&status=sent", "status"),
        ("from=2026-11&to=2026-10", "to"),
    ],
)
def test_invoice_parameters_are_checked(client: Client, query: str, param: str) -> None:
    status, _, body = client.call(f"/api/v1/invoices?{query}")
    assert status == 400 and json.loads(body)["parameter"] == param


# -- usage with amounts ----------------------------------------------------------------

USAGE = "/api/v1/usage?from=2026-11-01&to=2026-12-01"


def test_usage_rows_carry_amounts_in_cents(client: Client) -> None:
    amounts = session_amounts(client.db)
    rows = client.json(USAGE)["rows"]
    assert {r["session_id"]: r["amount"] for r in rows} == amounts
    grouped = client.json(USAGE + "&group_by=member")["rows"]
    assert sum(r["amount"] for r in grouped) == sum(amounts.values())
    for gran in ("minute", "day"):
        minute_rows = client.json(USAGE + f"&granularity={gran}")["rows"]
        assert sum(r["amount"] for r in minute_rows) == sum(amounts.values())
    per_minute = client.json(USAGE + "&granularity=minute")["rows"]
    s1 = [r["amount"] for r in per_minute if r["session_id"] == "S1"]
    assert s1 == [50, 50, 50]


def test_usage_in_french_csv(client: Client) -> None:
    rows = french_rows(client.text(USAGE + "&format=csv-fr"))
    s1 = next(r for r in rows if r["Session"] == "S1")
    # 125.5 s is 2.09 minutes: durations in minutes with two decimals, as accountants add.
    assert s1["Montant (€)"] == "1,50" and s1["Durée (min)"] == "2,09"
    assert s1["Membre"] and s1["Minutes facturées"] == "3"
    # 17:00:05 UTC is 18:00:05 in Paris in November.
    assert s1["Début"] == "03/11/2026 18:00:05"
    plain = list(csv.DictReader(io.StringIO(client.text(USAGE + "&format=csv"), newline="")))
    assert next(r for r in plain if r["session_id"] == "S1")["amount"] == "1.50"
    total = sum(cents(r["amount"], "csv") for r in plain)
    assert total == sum(session_amounts(client.db).values())


def test_per_minute_french_csv_names_its_columns_and_counts_minutes(client: Client) -> None:
    text = client.text(USAGE + "&granularity=minute&format=csv-fr")
    head = text.splitlines()[0]
    assert head.startswith("\ufeffMinute;Session;N° membre;Membre;Projet;Machine;Durée (min)")
    rows = french_rows(text)
    s1 = [r for r in rows if r["Session"] == "S1"]
    # S1 lasted 125.5 s: two whole minutes, then 5.5 s (0,09 min).
    assert [r["Durée (min)"] for r in s1] == ["1,00", "1,00", "0,09"]
    plain = client.text(USAGE + "&granularity=minute&format=csv")
    assert plain.splitlines()[0].startswith("minute_start,session_id,member_id")


def test_euros_are_exact() -> None:
    assert amount_text(1250, flavour("csv").decimal) == "12.50"
    assert amount_text(-5, flavour("csv-fr").decimal) == "-0,05"
    assert amount_text(123456789, flavour("csv-fr").decimal) == "1234567,89"


# -- the command line ------------------------------------------------------------------


def write_hub_yaml(tmp_path: Path, db: Path) -> Path:
    data = {
        "site": "demo-lab",
        "timezone": TZ,
        "language": "fr",
        "hub": {"database": str(db), "signing_key": str(tmp_path / "hub.key")},
        "groups": [{"id": g.id, "name": g.name} for g in GROUPS],
        "machines": [
            {"id": m.id, "name": m.name, "kind": m.kind, "group": m.group} for m in MACHINES
        ],
        "tariffs": [
            {"name": "Laser", "valid_from": "2026-01-01", "groups": ["laser"], "rate": 50},
            {
                "name": "Laser scolaire",
                "valid_from": "2026-01-01",
                "groups": ["laser"],
                "categories": ["scolaire"],
                "rate": 30,
            },
            {"name": "Laser 2027", "valid_from": "2026-12-01", "groups": ["laser"], "rate": 60},
            {
                "name": "CNC",
                "valid_from": "2026-01-01",
                "machines": ["cnc1"],
                "rate": 33,
                "startup": 150,
                "unit": 5,
                "vat_rate": "0.10",
            },
        ],
    }
    path = tmp_path / "hub.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def fabgate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args], capture_output=True, text=True, timeout=60
    )


@pytest.fixture
def hub_yaml(tmp_path: Path) -> Path:
    db = tmp_path / "hub.sqlite"
    with make_store(db) as store:
        ingest_envelopes(store, events_for(NOVEMBER_SESSIONS), NOV)
    return write_hub_yaml(tmp_path, db)


def test_cli_exports_invoices_to_a_file(hub_yaml: Path, tmp_path: Path) -> None:
    out = tmp_path / "factures.csv"
    r = fabgate(
        "export",
        "invoices",
        "--from",
        "2026-11",
        "--to",
        "2026-12",
        "--format",
        "csv-fr",
        "--detail",
        "lines",
        "--output",
        str(out),
        "--config",
        str(hub_yaml),
    )
    assert r.returncode == 0, r.stderr
    assert "\r" not in r.stderr  # not a terminal: no progress bar
    rows = french_rows(out.read_text(encoding="utf-8"))
    assert sum(cents(x["Montant HT (€)"], "csv-fr") for x in rows) == 4795
    assert not list(tmp_path.glob(".factures.csv.*"))  # the temporary file was renamed


def test_cli_exports_usage_as_json_and_csv(hub_yaml: Path, tmp_path: Path) -> None:
    r = fabgate(
        "export",
        "usage",
        "--from",
        "2026-11-01",
        "--to",
        "2026-12-01",
        "--format",
        "json",
        "--config",
        str(hub_yaml),
    )
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)["rows"]
    assert sum(x["amount"] for x in rows) == 4795
    out = tmp_path / "usage.csv"
    r = fabgate(
        "export",
        "usage",
        "--from",
        "2026-11",
        "--granularity",
        "day",
        "--group-by",
        "machine",
        "--format",
        "csv",
        "--output",
        str(out),
        "--config",
        str(hub_yaml),
    )
    assert r.returncode == 0, r.stderr
    plain = list(csv.DictReader(io.StringIO(out.read_text(), newline="")))
    assert sum(cents(x["amount"], "csv") for x in plain) == 4795
    bad = fabgate("export", "usage", "--group-by", "colour", "--config", str(hub_yaml))
    assert bad.returncode == 2 and "colour" in bad.stderr


def test_progress_bar_on_a_terminal(
    hub_yaml: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from gateway import cli

    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    out = tmp_path / "u.csv"
    assert (
        cli.main(
            [
                "export",
                "usage",
                "--from",
                "2026-11",
                "--output",
                str(out),
                "--config",
                str(hub_yaml),
            ]
        )
        == 0
    )
    err = capsys.readouterr().err
    assert "\r[" in err and f"{len(NOVEMBER_SESSIONS)}/{len(NOVEMBER_SESSIONS)} sessions" in err


def test_chunked_joins_lines_without_changing_them() -> None:
    from gateway.billing.exports import chunked

    lines = [f"row {i}\r\n" for i in range(5000)]
    chunks = list(chunked(lines, size=1000))
    assert "".join(chunks) == "".join(lines)
    assert all(len(c) >= 1000 for c in chunks[:-1]) and len(chunks) < len(lines) / 50


@pytest.mark.parametrize("fmt", ["csv", "csv-fr"])
@pytest.mark.parametrize("priced", [False, True])
def test_fast_per_minute_csv_is_byte_identical_to_the_general_path(fmt: str, priced: bool) -> None:
    from datetime import UTC, datetime

    from gateway.billing import exports
    from gateway.billing.usage import columns as usage_columns
    from gateway.billing.usage import usage_rows as rows_of

    sessions = [
        {
            "session_id": "s1",
            "member_id": "m1",
            "member_name": 'Zoé "la" Martin, fils',
            "project_id": None,
            "machine_id": "laser1",
            "started_at": "2026-03-29T00:58:59.123Z",
            "duration_s": 185.5,
        },  # across DST
        {
            "session_id": "s2",
            "member_id": "m2",
            "member_name": "Bob; le retour",
            "project_id": "p1",
            "machine_id": "cnc1",
            "started_at": datetime(2026, 11, 25, 17, 0, 30, 999000, tzinfo=UTC),
            "duration_s": 60.0,
        },
        {
            "session_id": "s3",
            "member_id": "m3",
            "member_name": "Empty",
            "project_id": None,
            "machine_id": "cnc1",
            "started_at": "2026-11-25T18:00:00.000Z",
            "duration_s": 0.0,
        },
        {
            "session_id": "s4",
            "member_id": "m3",
            "member_name": "Night owl",
            "project_id": None,
            "machine_id": "cnc1",  # across local and UTC midnight
            "started_at": "2026-11-25T22:58:30.500Z",
            "duration_s": 7200.25,
        },
    ]

    def price(s):
        return {"s1": 1001, "s2": 7, "s3": 1250, "s4": 12345}[s["session_id"]]

    p = price if priced else None
    fast = "".join(exports._minute_csv(iter(sessions), fmt, "Europe/Paris", p))
    general = "".join(
        exports.csv_lines(
            rows_of(iter(sessions), "minute", (), "Europe/Paris", price=p),
            usage_columns("minute", (), amounts=priced),
            exports.USAGE_KINDS,
            fmt,
            "Europe/Paris",
        )
    )
    assert fast == general
    # header, 4 minutes of s1, 1 of s2, none of s3, 121 of s4
    assert fast.count("\r\n") == 1 + 4 + 1 + 121


@pytest.mark.parametrize("fmt", ["csv", "csv-fr"])
@pytest.mark.parametrize("member", [None, "m4"])
def test_per_minute_csv_from_the_database_matches_the_general_path(
    tmp_path: Path, fmt: str, member: str | None
) -> None:
    """The export's own lean query and row builder against usage_rows over session_rows,
    on stored prices, across a DST change, local and UTC midnight, with quoting."""
    from gateway.billing import exports
    from gateway.billing.usage import columns as usage_columns
    from gateway.billing.usage import usage_rows as rows_of
    from gateway.config import Seed, SeedMember

    with make_store(tmp_path / "hub.sqlite") as store:
        import_seed(
            store,
            Seed(
                file=tmp_path / "seed.yaml",
                members=(SeedMember("m4", 'Zoé "la" Martin; fils, et cie', "adherent"),),
            ),
        )
        ingest_envelopes(
            store,
            events_for(
                [
                    (
                        "D1",
                        datetime(2026, 3, 29, 0, 58, 59, 123000, tzinfo=UTC),
                        185.5,
                        "m4",
                        "laser1",
                        None,
                    ),  # across DST
                    (
                        "D2",
                        datetime(2026, 3, 28, 22, 30, 0, 500000, tzinfo=UTC),
                        7200.25,
                        "m1",
                        "cnc1",
                        "p1",
                    ),  # local midnight
                    ("D3", datetime(2026, 3, 30, 23, 58, 30, tzinfo=UTC), 245, "m4", "cnc1", None),
                    ("D4", datetime(2026, 3, 30, 12, 0, tzinfo=UTC), 0, "m4", "laser1", None),
                    (
                        "D5",
                        datetime(2026, 3, 30, 12, 0, tzinfo=UTC),
                        3 * 86400 + 7,
                        "m2",
                        "printer1",
                        None,
                    ),  # days long
                    # last minute starting just after midnight, UTC then Paris
                    ("D6", datetime(2026, 3, 30, 23, 58, 30, tzinfo=UTC), 150, "m4", "cnc1", None),
                    ("D7", datetime(2026, 3, 30, 21, 58, 30, tzinfo=UTC), 150, "m4", "cnc1", None),
                ]
            ),
            NOV,
        )
        start, end = datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC)
        filters = {"member": member} if member else {}
        fast = "".join(
            exports.usage_export(
                store,
                start,
                end,
                granularity="minute",
                group_by=(),
                fmt=fmt,
                tz=TZ,
                filters=filters,
            )
        )
        general = "".join(
            exports.csv_lines(
                rows_of(
                    session_rows(store, start, end, **filters),
                    "minute",
                    (),
                    TZ,
                    price=lambda s: s["amount_cents"] or 0,
                ),
                usage_columns("minute", (), amounts=True),
                exports.USAGE_KINDS,
                fmt,
                TZ,
            )
        )
    assert fast == general
    assert fast.count("\r\n") > (5 if member else 4000)


_names = st.text(alphabet=st.sampled_from(list("ab é\";,\r\n'")), max_size=6)
_minute_sessions = st.lists(
    st.fixed_dictionaries(
        {
            "session_id": st.sampled_from(["s1", "s,2", 's"3', "s4"]),
            "member_id": st.one_of(st.none(), st.sampled_from(["m1", "m;2"])),
            "member_name": st.one_of(st.none(), _names),
            "project_id": st.one_of(st.none(), st.just("p1")),
            "machine_id": st.one_of(st.none(), st.sampled_from(["laser1", "cnc;1", 'l"2'])),
            # around the 2026 DST changes in Paris, and midnights
            "started_at": st.datetimes(
                min_value=datetime(2026, 3, 28),
                max_value=datetime(2026, 3, 30),
                timezones=st.just(UTC),
            )
            | st.datetimes(
                min_value=datetime(2026, 10, 24, 20),
                max_value=datetime(2026, 10, 25, 3),
                timezones=st.just(UTC),
            )
            | st.builds(  # minutes around a UTC or a Paris midnight
                lambda hour, s: datetime(2026, 3, 27, hour, tzinfo=UTC) + timedelta(seconds=s),
                st.sampled_from([22, 23]),
                st.integers(-900, 4500),
            ),
            "duration_s": st.floats(0, 600, allow_nan=False)
            | st.integers(0, 12).map(lambda m: m * 60.0)
            | st.floats(0, 3 * 86400, allow_nan=False),
            "amount": st.integers(0, 30) | st.integers(0, 100_000),
        }
    ),
    max_size=6,
)


@settings(max_examples=150, deadline=None)
@given(
    sessions=_minute_sessions,
    fmt=st.sampled_from(["csv", "csv-fr"]),
    as_text=st.booleans(),
    priced=st.booleans(),
)
def test_per_minute_csv_is_byte_identical_for_any_sessions(
    sessions: list[dict], fmt: str, as_text: bool, priced: bool
) -> None:
    from gateway.billing import exports
    from gateway.billing.usage import columns as usage_columns
    from gateway.billing.usage import usage_rows as rows_of
    from gateway.core.clock import iso

    rows = sorted(
        (
            {**s, "started_at": iso(s["started_at"]) if as_text else s["started_at"]}
            for s in sessions
        ),
        key=lambda s: iso(exports._when(s["started_at"])),
    )

    def price(s):
        return s["amount"]

    p = price if priced else None
    fast = "".join(exports._minute_csv(iter(rows), fmt, "Europe/Paris", p))
    general = "".join(
        exports.csv_lines(
            rows_of(iter(rows), "minute", (), "Europe/Paris", price=p),
            usage_columns("minute", (), amounts=priced),
            exports.USAGE_KINDS,
            fmt,
            "Europe/Paris",
        )
    )
    assert fast == general
