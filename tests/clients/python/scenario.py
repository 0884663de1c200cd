#!/usr/bin/env python3
"""An integrator's scenario against a running cetrack system, through a Python
client generated from proto/ with grpcio-tools (see generate.sh).

It talks to one or two domain services directly and to the gateway, and checks
what docs/api.md promises: create with participants, milestones and funding;
idempotent retries; pagination over several pages with opaque tokens bound to
their filter; etags (ABORTED when stale); INVALID_ARGUMENT with one
google.rpc.BadRequest field violation per invalid field, with its full path;
change streams (per domain and across domains through the gateway, with
resumable cursors); the gateway overview and an organization portfolio.

Every run uses fresh ids (a random run id), so it can run against a system
that already holds data, and again against the same one.

Usage:
  scenario.py --gateway 127.0.0.1:50050 \
      --domain quantum=127.0.0.1:50054 --domain energy=127.0.0.1:50053

  or with the environment: CETRACK_GATEWAY=127.0.0.1:50050
  CETRACK_DOMAINS=quantum=127.0.0.1:50054,energy=127.0.0.1:50053

The first domain is the one the scenario works in; a second one, when given,
is used to check that a portfolio spans domains. The last line printed is
`N passed, M failed`; the exit status is 0 only when nothing failed.
"""

from __future__ import annotations

import argparse
import os
import queue
import sys
import threading
import time
import traceback
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "generated"))

try:
    import grpc
    from google.protobuf import field_mask_pb2
    from google.rpc import error_details_pb2
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    from grpc_status import rpc_status

    from cet.v1 import domain_service_pb2 as ds
    from cet.v1 import domain_service_pb2_grpc as ds_grpc
    from cet.v1 import gateway_service_pb2 as gw
    from cet.v1 import gateway_service_pb2_grpc as gw_grpc
    from cet.v1 import initiative_pb2 as pb
except ImportError as e:  # pragma: no cover - a setup error, not a test failure
    print(f"cannot import the client ({e}): run generate.sh with the packages of "
          "requirements.txt installed", file=sys.stderr)
    print("0 passed, 1 failed")
    sys.exit(2)

# How long one unary call may take, in seconds.
CALL_TIMEOUT = 10.0
# How long to wait for a change to arrive on a stream, in seconds.
WATCH_TIMEOUT = 15.0


class CheckFailed(AssertionError):
    """A failed expectation of the scenario."""


def expect(cond: bool, what: str) -> None:
    if not cond:
        raise CheckFailed(what)


def expect_eq(got, want, what: str) -> None:
    if got != want:
        raise CheckFailed(f"{what}: got {got!r}, want {want!r}")


def expect_code(fn, code: grpc.StatusCode, what: str) -> grpc.RpcError:
    """Calls fn, expects it to fail with `code`, returns the error."""
    try:
        fn()
    except grpc.RpcError as e:
        if e.code() != code:
            raise CheckFailed(f"{what}: got {e.code().name} ({e.details()}), want {code.name}")
        return e
    raise CheckFailed(f"{what}: succeeded, want {code.name}")


def field_violations(err: grpc.RpcError) -> list[tuple[str, str]]:
    """The google.rpc.BadRequest field violations of an INVALID_ARGUMENT error,
    read from the `grpc-status-details-bin` trailer with grpcio-status."""
    status = rpc_status.from_call(err)
    expect(status is not None, "the error carries a google.rpc.Status in its trailers")
    expect_eq(status.code, grpc.StatusCode.INVALID_ARGUMENT.value[0], "google.rpc.Status code")
    out = []
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            out.extend((v.field, v.description) for v in bad.field_violations)
    expect(out, "the error carries a google.rpc.BadRequest with field violations")
    return out


def expect_violations(err: grpc.RpcError, want: list[str], what: str) -> None:
    got = field_violations(err)
    fields = [f for f, _ in got]
    missing = sorted(set(want) - set(fields))
    extra = sorted(set(fields) - set(want))
    if missing or extra or len(fields) != len(want):
        raise CheckFailed(
            f"{what}: field violations differ; missing {missing}, unexpected {extra}, "
            f"got {got}")
    for f, d in got:
        expect(d.strip() != "", f"{what}: violation of {f} has a description")


def approx(precision, year, quarter=0, month=0, day=0) -> pb.ApproximateDate:
    return pb.ApproximateDate(precision=precision, year=year, quarter=quarter,
                              month=month, day=day)


def cal(year, month, day) -> pb.CalendarDate:
    return pb.CalendarDate(year=year, month=month, day=day)


def org(id_, name, acronym, country, type_=pb.ORGANIZATION_TYPE_NATIONAL_LAB_OR_INSTITUTE):
    return pb.Organization(id=id_, name=name, acronym=acronym, country_code=country, type=type_)


def details_for(domain: str) -> pb.DomainDetails:
    """Minimal valid details of a domain."""
    return {
        "semiconductors": lambda: pb.DomainDetails(semiconductors=pb.SemiconductorDetails(
            segments=[pb.SUPPLY_CHAIN_SEGMENT_RESEARCH])),
        "biotech": lambda: pb.DomainDetails(biotech=pb.BiotechDetails(
            research_areas=[pb.BIOTECH_RESEARCH_AREA_RARE_DISEASES])),
        "energy": lambda: pb.DomainDetails(energy=pb.EnergyDetails(
            chemistries=[pb.BATTERY_CHEMISTRY_SODIUM_ION])),
        "quantum": lambda: pb.DomainDetails(quantum=pb.QuantumDetails(
            platforms=[pb.QUANTUM_PLATFORM_ANY], activities=[pb.QUANTUM_ACTIVITY_RESEARCH])),
        "ai": lambda: pb.DomainDetails(ai=pb.AiDetails(
            governance_frameworks=["G7 Code of Conduct"])),
        "connectivity": lambda: pb.DomainDetails(connectivity=pb.ConnectivityDetails(
            technologies=[pb.CONNECTIVITY_TECHNOLOGY_OPEN_RAN])),
        "partnerships": lambda: pb.DomainDetails(partnerships=pb.PartnershipDetails(
            partner_country_codes=["IN"], format=pb.PARTNERSHIP_FORMAT_TRILATERAL)),
    }[domain]()


def other_details(domain: str) -> tuple[pb.DomainDetails, str]:
    """Valid details of a domain other than `domain`, and the oneof name."""
    other = "energy" if domain != "energy" else "quantum"
    return details_for(other), other


def channel(addr: str) -> grpc.Channel:
    """A channel to `addr` whose calls carry the bearer token of CETRACK_TOKEN:
    over TLS trusting the CA of CETRACK_TLS_CA when it is set, else over local
    TCP credentials (the token may travel in plain text only to this
    machine)."""
    token = os.environ.get("CETRACK_TOKEN", "")
    ca = os.environ.get("CETRACK_TLS_CA", "")
    if ca:
        with open(ca, "rb") as f:
            transport = grpc.ssl_channel_credentials(root_certificates=f.read())
    elif token:
        transport = grpc.local_channel_credentials(grpc.LocalConnectionType.LOCAL_TCP)
    else:
        return grpc.insecure_channel(addr)
    if token:
        transport = grpc.composite_channel_credentials(
            transport, grpc.access_token_call_credentials(token))
    return grpc.secure_channel(addr, transport)


class Scenario:
    def __init__(self, gateway: str, domains: list[tuple[str, str]], run_id: str):
        self.run_id = run_id
        self.domain, self.domain_addr = domains[0]
        self.second = domains[1] if len(domains) > 1 else None
        self.parent = f"domains/{self.domain}"
        self.gw_channel = channel(gateway)
        self.dom_channel = channel(self.domain_addr)
        self.gateway = gw_grpc.GatewayServiceStub(self.gw_channel)
        self.dom = ds_grpc.DomainServiceStub(self.dom_channel)
        self.second_stub = None
        if self.second:
            self.second_channel = channel(self.second[1])
            self.second_stub = ds_grpc.DomainServiceStub(self.second_channel)
        self.health = {
            "gateway": health_pb2_grpc.HealthStub(self.gw_channel),
            self.domain: health_pb2_grpc.HealthStub(self.dom_channel),
        }
        if self.second:
            self.health[self.second[0]] = health_pb2_grpc.HealthStub(self.second_channel)
        # Organization ids unique to this run, so the portfolio is exactly ours.
        self.org_us = f"us-py{run_id}"
        self.org_kr = f"kr-py{run_id}"
        self.topic = f"py-{run_id}"
        self.main: pb.Initiative | None = None
        self.names: list[str] = []
        self.passed = 0
        self.failed = 0

    # ---------------------------------------------------------------- runner
    def check(self, title: str, fn) -> bool:
        start = time.monotonic()
        try:
            fn()
        except Exception as e:  # noqa: BLE001 - every failure is reported
            self.failed += 1
            ms = (time.monotonic() - start) * 1000
            print(f"FAIL  {title} ({ms:.0f} ms): {type(e).__name__}: {e}", flush=True)
            if not isinstance(e, (CheckFailed, grpc.RpcError)):
                traceback.print_exc()
            return False
        self.passed += 1
        ms = (time.monotonic() - start) * 1000
        print(f"ok    {title} ({ms:.0f} ms)", flush=True)
        return True

    def run(self) -> int:
        steps = [
            ("every server answers the gRPC health check with SERVING", self.health_check),
            ("create an initiative with participants, milestones and funding",
             self.create_initiative),
            ("a retried create with the same request_id returns the first result (AIP-155)",
             self.retry_create),
            ("creating an id that is taken is ALREADY_EXISTS", self.duplicate_create),
            ("get returns the stored initiative, from the domain and through the gateway",
             self.get_initiative),
            ("list pages through several pages with opaque tokens (AIP-158)", self.pagination),
            ("a page token is bound to its filter; a negative page size is refused",
             self.pagination_errors),
            ("update with the current etag succeeds and changes the etag", self.update_with_etag),
            ("update with a stale etag is ABORTED; without etag it is unconditional",
             self.update_stale_etag),
            ("invalid input: every field violation with its full path (google.rpc.BadRequest)",
             self.invalid_create),
            ("invalid update, milestone update, list and gateway requests name their fields",
             self.invalid_other_requests),
            ("WatchChanges on the domain delivers a new change after after_revision",
             self.watch_domain),
            ("the gateway's WatchAllChanges delivers it too, and resumes from its cursor",
             self.watch_gateway),
            ("the gateway overview covers every domain; money is never summed across "
             "currencies or qualifiers", self.overview),
            ("an organization portfolio spans domains; overdue only after the END of the "
             "due period", self.portfolio),
            ("delete with a stale etag is ABORTED; then deleted, get is NOT_FOUND",
             self.delete),
        ]
        for title, fn in steps:
            self.check(title, fn)
        print(f"{self.passed} passed, {self.failed} failed", flush=True)
        return 0 if self.failed == 0 else 1

    # ----------------------------------------------------------------- steps
    def health_check(self):
        for who, stub in self.health.items():
            r = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=CALL_TIMEOUT)
            expect_eq(r.status, health_pb2.HealthCheckResponse.SERVING, f"health of {who}")
        # The named services are registered too.
        r = self.health[self.domain].Check(
            health_pb2.HealthCheckRequest(service="cet.v1.DomainService"), timeout=CALL_TIMEOUT)
        expect_eq(r.status, health_pb2.HealthCheckResponse.SERVING, "health of cet.v1.DomainService")
        r = self.health["gateway"].Check(
            health_pb2.HealthCheckRequest(service="cet.v1.GatewayService"), timeout=CALL_TIMEOUT)
        expect_eq(r.status, health_pb2.HealthCheckResponse.SERVING,
                  "health of cet.v1.GatewayService")

    def main_initiative(self) -> pb.Initiative:
        return pb.Initiative(
            title=f"NIST-KRISS quantum cooperation ({self.run_id})",
            summary="Joint research on quantum metrology, with a floor on US funding.",
            instrument=pb.INSTRUMENT_COOPERATION_AGREEMENT,
            participants=[
                pb.Participant(organization=org(self.org_us, "Python Scenario Institute US",
                                                "PSI-US", "US"),
                               role=pb.PARTICIPANT_ROLE_LEAD,
                               status=pb.PARTICIPANT_STATUS_ON_TRACK),
                pb.Participant(organization=org(self.org_kr, "Python Scenario Institute KR",
                                                "PSI-KR", "KR"),
                               role=pb.PARTICIPANT_ROLE_CO_LEAD),
            ],
            planned_start=approx(pb.DATE_PRECISION_YEAR, 2024),
            planned_end=approx(pb.DATE_PRECISION_YEAR, 2026),
            # Committed to in 2023 (valid time): the views "as of" 2024 and
            # 2025 count it.
            status_date=approx(pb.DATE_PRECISION_YEAR, 2023),
            milestones=[
                pb.Milestone(id="sign", title="Sign the agreement",
                             due=approx(pb.DATE_PRECISION_QUARTER, 2024, quarter=1)),
                pb.Milestone(id="workshop", title="First joint workshop",
                             due=approx(pb.DATE_PRECISION_MONTH, 2024, month=6)),
            ],
            funding=[
                pb.FundingCommitment(
                    amount=pb.Money(currency_code="USD", units=10_000_000),
                    qualifier=pb.AMOUNT_QUALIFIER_AT_LEAST,
                    committing_organization_id=self.org_us,
                    kind=pb.FUNDING_KIND_PLEDGED,
                    note="no less than US$10 million"),
                pb.FundingCommitment(
                    amount=pb.Money(currency_code="KRW", units=13_000_000_000),
                    qualifier=pb.AMOUNT_QUALIFIER_ABOUT,
                    committing_organization_id=self.org_kr),
            ],
            topics=[self.topic, "metrology"],
            sources=[pb.SourceReference(
                document="Joint Fact Sheet: Launching the U.S.-ROK Next Generation Critical "
                         "and Emerging Technologies Dialogue",
                date=approx(pb.DATE_PRECISION_DAY, 2023, month=12, day=8),
                section="Quantum")],
            details=details_for(self.domain),
        )

    def create_initiative(self):
        want = self.main_initiative()
        self.main_id = f"py-{self.run_id}-main"
        self.create_request = ds.CreateInitiativeRequest(
            parent=self.parent, initiative_id=self.main_id, initiative=want,
            request_id=f"create-{self.run_id}", reporter="python-scenario")
        got = self.dom.CreateInitiative(self.create_request, timeout=CALL_TIMEOUT)
        self.main = got
        self.names.append(got.name)
        expect_eq(got.name, f"{self.parent}/initiatives/{self.main_id}", "name")
        expect_eq(pb.Domain.Name(got.domain), f"DOMAIN_{self.domain.upper()}", "domain")
        expect_eq(got.status, pb.LIFECYCLE_STATUS_PROPOSED, "unset status means PROPOSED")
        expect(got.etag != "", "an etag is set")
        expect(got.revision > 0, "a revision is set")
        expect(got.HasField("create_time") and got.HasField("update_time"), "times are set")
        expect_eq([p.organization.id for p in got.participants], [self.org_us, self.org_kr],
                  "participants")
        expect_eq([m.id for m in got.milestones], ["sign", "workshop"], "milestones")
        expect_eq([m.status for m in got.milestones], [pb.MILESTONE_STATUS_SCHEDULED] * 2,
                  "unset milestone status means SCHEDULED")
        expect_eq(got.milestones[0].due, want.milestones[0].due, "quarter precision is kept")
        expect_eq([(f.amount.currency_code, f.amount.units, f.qualifier) for f in got.funding],
                  [("USD", 10_000_000, pb.AMOUNT_QUALIFIER_AT_LEAST),
                   ("KRW", 13_000_000_000, pb.AMOUNT_QUALIFIER_ABOUT)], "funding")
        expect_eq(got.details.WhichOneof("kind"), self.domain, "details")

    def retry_create(self):
        expect(self.main is not None, "the initiative was created")
        again = self.dom.CreateInitiative(self.create_request, timeout=CALL_TIMEOUT)
        expect_eq(again.revision, self.main.revision, "revision of the retry")
        expect_eq(again.etag, self.main.etag, "etag of the retry")
        # The same request id with a different request is refused.
        other = ds.CreateInitiativeRequest()
        other.CopyFrom(self.create_request)
        other.initiative.title = "something else"
        expect_code(lambda: self.dom.CreateInitiative(other, timeout=CALL_TIMEOUT),
                    grpc.StatusCode.FAILED_PRECONDITION, "request id reused for another request")

    def duplicate_create(self):
        req = ds.CreateInitiativeRequest(parent=self.parent, initiative_id=self.main_id,
                                         initiative=self.main_initiative())
        expect_code(lambda: self.dom.CreateInitiative(req, timeout=CALL_TIMEOUT),
                    grpc.StatusCode.ALREADY_EXISTS, "duplicate id")

    def get_initiative(self):
        expect(self.main is not None, "the initiative was created")
        got = self.dom.GetInitiative(ds.GetInitiativeRequest(name=self.main.name),
                                     timeout=CALL_TIMEOUT)
        expect_eq(got, self.main, "domain GetInitiative")
        via = self.gateway.GetInitiative(ds.GetInitiativeRequest(name=self.main.name),
                                         timeout=CALL_TIMEOUT)
        expect_eq(via, self.main, "gateway GetInitiative")
        expect_code(lambda: self.dom.GetInitiative(
            ds.GetInitiativeRequest(name=f"{self.parent}/initiatives/py-{self.run_id}-none"),
            timeout=CALL_TIMEOUT), grpc.StatusCode.NOT_FOUND, "unknown initiative")

    def pagination(self):
        # 7 more initiatives with the run's topic: with the main one, 8 in all,
        # read 3 at a time: pages of 3, 3 and 2.
        created = [self.main.name] if self.main else []
        for i in range(7):
            init = pb.Initiative(
                title=f"Paged initiative {i} ({self.run_id})",
                instrument=pb.INSTRUMENT_WORKING_GROUP,
                status_date=approx(pb.DATE_PRECISION_YEAR, 2023),
                topics=[self.topic],
                participants=[pb.Participant(
                    organization=org(self.org_kr, "Python Scenario Institute KR", "PSI-KR",
                                     "KR"),
                    role=pb.PARTICIPANT_ROLE_PARTNER)],
            )
            # Created in reverse id order: the list is still in id order.
            r = self.dom.CreateInitiative(ds.CreateInitiativeRequest(
                parent=self.parent, initiative_id=f"py-{self.run_id}-page-{6 - i}",
                initiative=init), timeout=CALL_TIMEOUT)
            created.append(r.name)
        self.names.extend(created[1:])
        filt = ds.InitiativeFilter(topic=self.topic)
        pages, token = [], ""
        while True:
            r = self.dom.ListInitiatives(ds.ListInitiativesRequest(
                parent=self.parent, page_size=3, page_token=token, filter=filt),
                timeout=CALL_TIMEOUT)
            pages.append([i.name for i in r.initiatives])
            token = r.next_page_token
            if not token:
                break
            expect(len(pages) < 10, "the walk ends")
        self.page_token = None
        expect_eq([len(p) for p in pages], [3, 3, 2], "page sizes")
        walked = [n for p in pages for n in p]
        expect_eq(walked, sorted(created), "every initiative once, in id order")
        # The same walk through the gateway's cross-domain search.
        pages, token = [], ""
        while True:
            r = self.gateway.SearchInitiatives(gw.SearchInitiativesRequest(
                filter=filt, page_size=3, page_token=token), timeout=CALL_TIMEOUT)
            expect_eq(list(r.unavailable), [], "every domain answered the search")
            pages.append([i.name for i in r.initiatives])
            token = r.next_page_token
            if not token:
                break
            expect(len(pages) < 10, "the search walk ends")
        expect_eq([n for p in pages for n in p], sorted(created), "gateway search walk")

    def pagination_errors(self):
        filt = ds.InitiativeFilter(topic=self.topic)
        first = self.dom.ListInitiatives(ds.ListInitiativesRequest(
            parent=self.parent, page_size=1, filter=filt), timeout=CALL_TIMEOUT)
        expect(first.next_page_token != "", "a first page of 1 has a next page")
        other = ds.InitiativeFilter(topic=self.topic, text="paged")
        err = expect_code(lambda: self.dom.ListInitiatives(ds.ListInitiativesRequest(
            parent=self.parent, page_size=1, page_token=first.next_page_token, filter=other),
            timeout=CALL_TIMEOUT), grpc.StatusCode.INVALID_ARGUMENT, "token of another filter")
        expect_violations(err, ["page_token"], "token of another filter")
        err = expect_code(lambda: self.dom.ListInitiatives(ds.ListInitiativesRequest(
            parent=self.parent, page_size=-1, page_token="not-a-token"), timeout=CALL_TIMEOUT),
            grpc.StatusCode.INVALID_ARGUMENT, "negative page size")
        expect_violations(err, ["page_size", "page_token"], "negative page size, bad token")

    def update_with_etag(self):
        expect(self.main is not None, "the initiative was created")
        before = self.main
        upd = pb.Initiative(name=before.name, etag=before.etag,
                            status=pb.LIFECYCLE_STATUS_ANNOUNCED)
        got = self.dom.UpdateInitiative(ds.UpdateInitiativeRequest(
            initiative=upd, update_mask=field_mask_pb2.FieldMask(paths=["status"]),
            reporter="python-scenario"), timeout=CALL_TIMEOUT)
        expect_eq(got.status, pb.LIFECYCLE_STATUS_ANNOUNCED, "status")
        expect(got.etag != before.etag, "the etag changed")
        expect(got.revision > before.revision, "the revision grew")
        expect_eq(got.title, before.title, "fields outside the mask are kept")
        self.stale_etag = before.etag
        self.main = got

    def update_stale_etag(self):
        expect(self.main is not None and getattr(self, "stale_etag", ""), "an etag went stale")
        upd = pb.Initiative(name=self.main.name, etag=self.stale_etag,
                            summary="written with a stale etag")
        expect_code(lambda: self.dom.UpdateInitiative(ds.UpdateInitiativeRequest(
            initiative=upd, update_mask=field_mask_pb2.FieldMask(paths=["summary"])),
            timeout=CALL_TIMEOUT), grpc.StatusCode.ABORTED, "stale etag")
        got = self.dom.GetInitiative(ds.GetInitiativeRequest(name=self.main.name),
                                     timeout=CALL_TIMEOUT)
        expect_eq(got, self.main, "nothing changed after ABORTED")
        # No etag: unconditional.
        upd = pb.Initiative(name=self.main.name, summary=self.main.summary + " Updated.")
        got = self.dom.UpdateInitiative(ds.UpdateInitiativeRequest(
            initiative=upd, update_mask=field_mask_pb2.FieldMask(paths=["summary"])),
            timeout=CALL_TIMEOUT)
        expect(got.summary.endswith(" Updated."), "the unconditional update was applied")
        self.main = got

    def invalid_create(self):
        bad = self.main_initiative()
        bad.title = ""                                              # required
        bad.instrument = pb.INSTRUMENT_UNSPECIFIED                  # required
        bad.participants[0].organization.country_code = "XX"        # not ISO 3166-1
        bad.participants[1].role = pb.PARTICIPANT_ROLE_UNSPECIFIED  # required
        bad.milestones[0].due.quarter = 5                           # 1 to 4
        bad.milestones[1].id = "Workshop!"                          # not a slug
        bad.funding[0].amount.currency_code = "XYZ"                 # not ISO 4217
        bad.funding[0].amount.nanos = 2_000_000_000                 # 0 to 999,999,999
        bad.topics.append("Not A Slug")                             # topics[2]
        bad.sources[0].url = "ftp://example.org/fact-sheet"         # http(s) only
        details, other = other_details(self.domain)
        bad.details.CopyFrom(details)                               # another domain's
        req = ds.CreateInitiativeRequest(parent=self.parent, initiative_id="Bad_Id",
                                         initiative=bad)
        err = expect_code(lambda: self.dom.CreateInitiative(req, timeout=CALL_TIMEOUT),
                          grpc.StatusCode.INVALID_ARGUMENT, "invalid create")
        expect_violations(err, [
            "initiative_id",
            "initiative.title",
            "initiative.instrument",
            "initiative.participants[0].organization.country_code",
            "initiative.participants[1].role",
            "initiative.milestones[0].due.quarter",
            "initiative.milestones[1].id",
            "initiative.funding[0].amount.currency_code",
            "initiative.funding[0].amount.nanos",
            "initiative.topics[2]",
            "initiative.sources[0].url",
            f"initiative.details.{other}",
        ], "invalid create")
        for f, d in field_violations(err):
            print(f"      {f}: {d}")
        # Nothing was created.
        r = self.dom.ListInitiatives(ds.ListInitiativesRequest(
            parent=self.parent, filter=ds.InitiativeFilter(topic=self.topic), page_size=100),
            timeout=CALL_TIMEOUT)
        expect_eq(sorted(i.name for i in r.initiatives), sorted(self.names),
                  "an invalid create stores nothing")

    def invalid_other_requests(self):
        expect(self.main is not None, "the initiative was created")
        # Update: a mask naming an output-only field and an unknown one.
        upd = pb.Initiative(name=self.main.name)
        err = expect_code(lambda: self.dom.UpdateInitiative(ds.UpdateInitiativeRequest(
            initiative=upd, update_mask=field_mask_pb2.FieldMask(paths=["etag", "colour"])),
            timeout=CALL_TIMEOUT), grpc.StatusCode.INVALID_ARGUMENT, "bad update mask")
        expect_violations(err, ["update_mask.paths[0]", "update_mask.paths[1]"],
                          "bad update mask")
        # Update: the merged record is checked, with paths of the request.
        upd = pb.Initiative(name=self.main.name, participants=[pb.Participant(
            organization=org("x", "", "", "kr", pb.ORGANIZATION_TYPE_UNSPECIFIED),
            role=pb.PARTICIPANT_ROLE_LEAD)])
        err = expect_code(lambda: self.dom.UpdateInitiative(ds.UpdateInitiativeRequest(
            initiative=upd, update_mask=field_mask_pb2.FieldMask(paths=["participants"])),
            timeout=CALL_TIMEOUT), grpc.StatusCode.INVALID_ARGUMENT, "bad participants")
        expect_violations(err, [
            "initiative.participants[0].organization.id",
            "initiative.participants[0].organization.name",
            "initiative.participants[0].organization.country_code",
            "initiative.participants[0].organization.type",
        ], "bad participants")
        # UpdateMilestone: a date met on a milestone that is not met.
        err = expect_code(lambda: self.dom.UpdateMilestone(ds.UpdateMilestoneRequest(
            name=self.main.name,
            milestone=pb.Milestone(id="sign", status=pb.MILESTONE_STATUS_SCHEDULED,
                                   date_met=approx(pb.DATE_PRECISION_MONTH, 2024, month=13)),
            update_mask=field_mask_pb2.FieldMask(paths=["status", "date_met"])),
            timeout=CALL_TIMEOUT), grpc.StatusCode.INVALID_ARGUMENT, "bad milestone")
        expect_violations(err, ["milestone.date_met", "milestone.date_met.month"],
                          "bad milestone")
        # ListInitiatives: a bad filter.
        err = expect_code(lambda: self.dom.ListInitiatives(ds.ListInitiativesRequest(
            parent=self.parent, filter=ds.InitiativeFilter(
                country_code="Korea", due_after=cal(2024, 2, 30),
                statuses=[pb.LIFECYCLE_STATUS_UNSPECIFIED])), timeout=CALL_TIMEOUT),
            grpc.StatusCode.INVALID_ARGUMENT, "bad filter")
        expect_violations(err, ["filter.statuses[0]", "filter.country_code",
                                "filter.due_after.day"], "bad filter")
        # Gateway: a malformed name.
        err = expect_code(lambda: self.gateway.GetInitiative(
            ds.GetInitiativeRequest(name="initiatives/x"), timeout=CALL_TIMEOUT),
            grpc.StatusCode.INVALID_ARGUMENT, "gateway malformed name")
        expect_violations(err, ["name"], "gateway malformed name")
        # Gateway: a bad portfolio request.
        err = expect_code(lambda: self.gateway.GetOrganizationPortfolio(
            gw.GetOrganizationPortfolioRequest(organization_id="US NSF", due_within_days=-1),
            timeout=CALL_TIMEOUT), grpc.StatusCode.INVALID_ARGUMENT, "gateway bad portfolio")
        expect_violations(err, ["organization_id", "due_within_days"], "gateway bad portfolio")

    def _watch(self, start_call, stop: threading.Event, out: queue.Queue):
        """Reads a server stream on a thread into `out`; ends on `stop`."""
        call = start_call()

        def reader():
            try:
                for item in call:
                    out.put(item)
                    if stop.is_set():
                        break
            except grpc.RpcError as e:
                if not stop.is_set():
                    out.put(e)
            finally:
                out.put(None)

        t = threading.Thread(target=reader, daemon=True)
        t.start()
        return call, t

    def _next(self, q: queue.Queue, deadline: float, what: str):
        left = deadline - time.monotonic()
        expect(left > 0, f"{what}: timed out after {WATCH_TIMEOUT:.0f} s")
        try:
            item = q.get(timeout=left)
        except queue.Empty:
            raise CheckFailed(f"{what}: nothing arrived within {WATCH_TIMEOUT:.0f} s")
        if isinstance(item, grpc.RpcError):
            raise CheckFailed(f"{what}: stream failed: {item.code().name} {item.details()}")
        expect(item is not None, f"{what}: the stream ended")
        return item

    def watch_domain(self):
        expect(self.main is not None, "the initiative was created")
        # The domain's last revision now (our last write, or a later one of
        # another step): the watch starts after it.
        after = self.dom.GetDomainSummary(ds.GetDomainSummaryRequest(parent=self.parent),
                                          timeout=CALL_TIMEOUT).last_revision
        stop, q = threading.Event(), queue.Queue()
        call, t = self._watch(lambda: self.dom.WatchChanges(
            ds.WatchChangesRequest(parent=self.parent, after_revision=after),
            timeout=WATCH_TIMEOUT + 5), stop, q)
        try:
            got = self.dom.AddProgressUpdate(ds.AddProgressUpdateRequest(
                name=self.main.name, etag=self.main.etag,
                progress_update=pb.ProgressUpdate(
                    as_of=approx(pb.DATE_PRECISION_MONTH, 2024, month=3),
                    reporting_organization_id=self.org_kr,
                    text="Agreement text agreed.",
                    assessment=pb.COMPLETION_ASSESSMENT_LIMITED)),
                timeout=CALL_TIMEOUT)
            expect_eq(len(got.progress_updates), 1, "progress updates")
            expect(got.progress_updates[0].id != "", "the server set the update's id")
            self.main = got
            deadline = time.monotonic() + WATCH_TIMEOUT
            # Nothing else writes to this domain now: the first change after
            # the cursor is exactly the next revision, and it is ours.
            change = self._next(q, deadline, "domain watch")
            expect_eq(change.revision, after + 1, "the first change is the revision after the cursor")
            expect_eq(change.revision, got.revision, "and it is our write")
            expect_eq(change.name, got.name, "name of the change")
            expect_eq(change.type, ds.CHANGE_TYPE_PROGRESS_ADDED, "change type")
            expect_eq(change.reporter, "python-scenario", "the history is signed by the verified caller (the token's sub)")
            expect_eq(change.initiative, got, "the change carries the initiative after it")
        finally:
            stop.set()
            call.cancel()
            t.join(timeout=5)

    def watch_gateway(self):
        expect(self.main is not None, "the initiative was created")
        dom_enum = pb.Domain.Value(f"DOMAIN_{self.domain.upper()}")
        target = self.main.revision

        def read_until(cursor: str, want_revision: int, what: str) -> gw.DomainChange:
            stop, q = threading.Event(), queue.Queue()
            call, t = self._watch(lambda: self.gateway.WatchAllChanges(
                gw.WatchAllChangesRequest(cursor=cursor, domains=[dom_enum]),
                timeout=WATCH_TIMEOUT + 5), stop, q)
            try:
                deadline = time.monotonic() + WATCH_TIMEOUT
                while True:
                    ev = self._next(q, deadline, what)
                    expect_eq(ev.domain, dom_enum, f"{what}: domain of the event")
                    expect(ev.cursor != "", f"{what}: the event carries a cursor")
                    if ev.change.revision >= want_revision:
                        return ev, (stop, call, t)
            except BaseException:
                stop.set()
                call.cancel()
                t.join(timeout=5)
                raise

        # From the start of the domain up to our last change.
        ev, (stop, call, t) = read_until("", target, "gateway watch from the start")
        stop.set()
        call.cancel()
        t.join(timeout=5)
        expect_eq(ev.change.revision, target, "the gateway stream holds our last change")
        expect_eq(ev.change.name, self.main.name, "name of the change")
        cursor = ev.cursor
        # Another change, then resume from the cursor: the next event is the
        # first change after it, nothing repeated.
        got = self.dom.UpdateMilestone(ds.UpdateMilestoneRequest(
            name=self.main.name,
            milestone=pb.Milestone(id="sign", status=pb.MILESTONE_STATUS_MET,
                                   date_met=approx(pb.DATE_PRECISION_MONTH, 2024, month=2)),
            update_mask=field_mask_pb2.FieldMask(paths=["status", "date_met"]),
            etag=self.main.etag), timeout=CALL_TIMEOUT)
        expect_eq(got.milestones[0].status, pb.MILESTONE_STATUS_MET, "milestone status")
        self.main = got
        # The first event after the cursor, whatever it is: exactly the next
        # revision (nothing repeated, nothing skipped), our write.
        ev, (stop, call, t) = read_until(cursor, 0, "gateway watch resumed")
        stop.set()
        call.cancel()
        t.join(timeout=5)
        expect_eq(ev.change.revision, target + 1, "the resumed stream starts right after the cursor")
        expect_eq(ev.change.revision, got.revision, "and it is our write")
        expect_eq(ev.change.type, ds.CHANGE_TYPE_MILESTONE_UPDATED, "change type")
        self.cursor = ev.cursor
        # A cursor that is not one is refused.
        err = expect_code(lambda: list(self.gateway.WatchAllChanges(
            gw.WatchAllChangesRequest(cursor="garbage!"), timeout=CALL_TIMEOUT)),
            grpc.StatusCode.INVALID_ARGUMENT, "bad cursor")
        expect_violations(err, ["cursor"], "bad cursor")

    def overview(self):
        r = self.gateway.GetOverview(gw.GetOverviewRequest(as_of=cal(2024, 3, 31),
                                                           due_within_days=30),
                                     timeout=CALL_TIMEOUT)
        expect_eq([d.domain for d in r.domains], list(range(1, 8)),
                  "one entry per domain in enum order")
        unavailable = [pb.Domain.Name(d.domain) for d in r.domains if not d.available]
        expect_eq(unavailable, [], "every domain available")
        expect(r.totals.complete, "totals are complete")
        expect_eq(r.as_of, cal(2024, 3, 31), "as_of")
        mine = next(d for d in r.domains if d.summary.parent == self.parent)
        expect(mine.summary.initiative_count >= len(self.names),
               f"{self.parent} holds at least our {len(self.names)} initiatives")
        expect(r.totals.initiative_count >= mine.summary.initiative_count, "totals add up")
        expect_eq(r.totals.initiative_count,
                  sum(d.summary.initiative_count for d in r.domains), "total initiatives")
        keys = [(f.total.currency_code, f.qualifier) for f in r.totals.funding]
        expect_eq(len(keys), len(set(keys)), "one funding total per currency and qualifier")
        expect_eq(keys, sorted(keys), "funding ordered by currency, then qualifier")
        by_key = {(f.total.currency_code, f.qualifier): f for f in r.totals.funding}
        usd = by_key.get(("USD", pb.AMOUNT_QUALIFIER_AT_LEAST))
        krw = by_key.get(("KRW", pb.AMOUNT_QUALIFIER_ABOUT))
        expect(usd is not None and usd.total.units >= 10_000_000,
               "USD 'at least' total holds our US$10 million")
        expect(krw is not None and krw.total.units >= 13_000_000_000,
               "KRW 'about' total holds our amount, apart from USD")
        orgs = {o.organization_id: o for o in r.totals.organizations}
        # Ours take part in the main initiative (both) and the 7 paged ones (KR).
        expect_eq(orgs[self.org_kr].initiative_count if self.org_kr in orgs else None, 8,
                  f"initiatives of {self.org_kr}")
        expect_eq(orgs[self.org_us].initiative_count if self.org_us in orgs else None, 1,
                  f"initiatives of {self.org_us}")

    def portfolio(self):
        expect(self.main is not None, "the initiative was created")
        names = [self.main.name]
        if self.second_stub is not None:
            dname = self.second[0]
            r = self.second_stub.CreateInitiative(ds.CreateInitiativeRequest(
                parent=f"domains/{dname}", initiative_id=f"py-{self.run_id}-second",
                initiative=pb.Initiative(
                    title=f"A second-domain initiative ({self.run_id})",
                    instrument=pb.INSTRUMENT_MOU,
                    status=pb.LIFECYCLE_STATUS_IN_PROGRESS,
                    status_date=approx(pb.DATE_PRECISION_YEAR, 2023),
                    participants=[pb.Participant(
                        organization=org(self.org_us, "Python Scenario Institute US",
                                         "PSI-US", "US"),
                        role=pb.PARTICIPANT_ROLE_FUNDER)],
                    milestones=[pb.Milestone(
                        id="pilot", title="Pilot",
                        due=approx(pb.DATE_PRECISION_YEAR, 2023))],
                    details=details_for(dname))), timeout=CALL_TIMEOUT)
            names.append(r.name)
        # 31 March 2024: the last day of Q1 2024. The "sign" milestone (due Q1
        # 2024) is met now; "workshop" (June 2024) is due within 92 days; the
        # second domain's "pilot" (2023) is overdue.
        p = self.gateway.GetOrganizationPortfolio(gw.GetOrganizationPortfolioRequest(
            organization_id=self.org_us, as_of=cal(2024, 3, 31), due_within_days=92),
            timeout=CALL_TIMEOUT)
        expect_eq(p.organization.id, self.org_us, "organization")
        expect_eq(list(p.unavailable), [], "every domain answered")
        expect_eq([e.name for e in p.entries], sorted(names), "entries in resource-name order")
        main = next(e for e in p.entries if e.name == self.main.name)
        expect_eq(main.role, pb.PARTICIPANT_ROLE_LEAD, "role in the main initiative")
        expect_eq(main.party_status, pb.PARTICIPANT_STATUS_ON_TRACK, "party status")
        expect_eq([c.organization.id for c in main.counterparts], [self.org_kr], "counterparts")
        expect_eq([m.id for m in main.milestones_due], ["workshop"], "milestones due")
        expect_eq([m.id for m in main.milestones_overdue], [], "nothing overdue in the main")
        if len(names) > 1:
            second = next(e for e in p.entries if e.name == names[1])
            expect_eq(second.role, pb.PARTICIPANT_ROLE_FUNDER, "role in the second")
            expect_eq([m.id for m in second.milestones_overdue], ["pilot"],
                      "a 2023 milestone is overdue in 2024")
        # Overdue means after the END of the period: "workshop" (June 2024) is
        # not overdue on 30 June 2024, and is on 1 July 2024.
        for day, overdue in [(cal(2024, 6, 30), []), (cal(2024, 7, 1), ["workshop"])]:
            p = self.gateway.GetOrganizationPortfolio(gw.GetOrganizationPortfolioRequest(
                organization_id=self.org_kr, as_of=day), timeout=CALL_TIMEOUT)
            main = next(e for e in p.entries if e.name == self.main.name)
            expect_eq([m.id for m in main.milestones_overdue], overdue,
                      f"overdue milestones as of {day.year}-{day.month:02}-{day.day:02}")
        expect_code(lambda: self.gateway.GetOrganizationPortfolio(
            gw.GetOrganizationPortfolioRequest(organization_id=f"zz-none-{self.run_id}"),
            timeout=CALL_TIMEOUT), grpc.StatusCode.NOT_FOUND, "an organization in nothing")

    def delete(self):
        expect(self.main is not None, "the initiative was created")
        name = self.names[-1]
        cur = self.dom.GetInitiative(ds.GetInitiativeRequest(name=name), timeout=CALL_TIMEOUT)
        expect_code(lambda: self.dom.DeleteInitiative(ds.DeleteInitiativeRequest(
            name=name, etag=self.stale_etag), timeout=CALL_TIMEOUT),
            grpc.StatusCode.ABORTED, "delete with a stale etag")
        self.dom.DeleteInitiative(ds.DeleteInitiativeRequest(name=name, etag=cur.etag),
                                  timeout=CALL_TIMEOUT)
        expect_code(lambda: self.dom.GetInitiative(ds.GetInitiativeRequest(name=name),
                                                   timeout=CALL_TIMEOUT),
                    grpc.StatusCode.NOT_FOUND, "get after delete")
        h = self.dom.ListHistory(ds.ListHistoryRequest(name=name), timeout=CALL_TIMEOUT)
        expect_eq([c.type for c in h.changes], [ds.CHANGE_TYPE_CREATED, ds.CHANGE_TYPE_DELETED],
                  "the history outlives the initiative")


def parse_domains(values: list[str]) -> list[tuple[str, str]]:
    out = []
    for v in values:
        for part in v.split(","):
            part = part.strip()
            if not part:
                continue
            name, sep, addr = part.partition("=")
            if not sep or not name or not addr:
                raise SystemExit(f"--domain wants NAME=HOST:PORT, got {part!r}")
            addr = addr.removeprefix("http://")
            out.append((name.strip(), addr.strip()))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--gateway", default=os.environ.get("CETRACK_GATEWAY", "127.0.0.1:50050"),
                    help="the gateway's HOST:PORT (env CETRACK_GATEWAY)")
    ap.add_argument("--domain", action="append", default=[],
                    help="a domain service as NAME=HOST:PORT; repeatable; the first is worked "
                         "in (env CETRACK_DOMAINS, comma-separated); default "
                         "quantum=127.0.0.1:50054,energy=127.0.0.1:50053")
    ap.add_argument("--run-id", default=os.environ.get("CETRACK_RUN_ID", ""),
                    help="suffix of the ids this run creates (default: random)")
    args = ap.parse_args()
    domains = parse_domains(args.domain or [os.environ.get(
        "CETRACK_DOMAINS", "quantum=127.0.0.1:50054,energy=127.0.0.1:50053")])
    if not domains:
        raise SystemExit("no domain given")
    run_id = args.run_id or uuid.uuid4().hex[:8]
    print(f"cetrack Python client scenario: gateway {args.gateway}, domains "
          f"{', '.join(f'{n}={a}' for n, a in domains)}, run {run_id}", flush=True)
    return Scenario(args.gateway, domains, run_id).run()


if __name__ == "__main__":
    sys.exit(main())
