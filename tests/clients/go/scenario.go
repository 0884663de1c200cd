// An integrator's scenario against a running cetrack system, through a Go
// client generated from proto/ with Debian's protoc, protoc-gen-go and
// protoc-gen-go-grpc (see generate.sh), built in GOPATH mode against Debian's
// Go gRPC and protobuf libraries.
//
// It talks to the gateway only (the gateway serves cet.v1.DomainService for
// every domain, routed by `parent` / `name`, besides cet.v1.GatewayService),
// over TLS trusting the CA of CETRACK_TLS_CA, with the bearer token of
// CETRACK_TOKEN on every call. It reads the overview, creates an initiative
// with money and imprecise dates, updates it with its etag, sees a stale etag
// refused with ABORTED and the field violations of a bad request in the rich
// error details (google.rpc.BadRequest), and follows the change stream.
//
// Every run uses fresh ids, so it can run against a system that already holds
// data, and again against the same one.
//
// Usage: scenario -gateway 127.0.0.1:50050 [-domain quantum]
// (or CETRACK_GATEWAY). The last line printed is `N passed, M failed`; the
// exit status is 0 only when nothing failed.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"os"
	"reflect"
	"sort"
	"strings"
	"time"

	cetv1 "github.com/cetrack/cetrack/gen/go/cet/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
)

// How long one unary call may take.
const callTimeout = 10 * time.Second

// How long the change stream may take to deliver what the scenario waits for.
const watchTimeout = 15 * time.Second

// bearerToken sends `authorization: Bearer <token>` with every call, and only
// over TLS.
type bearerToken string

func (t bearerToken) GetRequestMetadata(ctx context.Context, uri ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(t)}, nil
}

func (t bearerToken) RequireTransportSecurity() bool { return true }

// dial connects to addr over TLS, trusting the CA in the PEM file caFile, and
// sends the token with every call when it is not empty.
func dial(addr, caFile, token string) (*grpc.ClientConn, error) {
	creds, err := credentials.NewClientTLSFromFile(caFile, "")
	if err != nil {
		return nil, fmt.Errorf("CA %s: %w", caFile, err)
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(creds), grpc.WithBlock()}
	if token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(bearerToken(token)))
	}
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	return grpc.DialContext(ctx, addr, opts...)
}

// failure is a failed expectation of the scenario.
type failure struct{ msg string }

func fail(format string, args ...interface{}) {
	panic(failure{fmt.Sprintf(format, args...)})
}

func expect(cond bool, what string) {
	if !cond {
		fail("%s", what)
	}
}

func expectEq(got, want interface{}, what string) {
	if !reflect.DeepEqual(got, want) {
		fail("%s: got %v, want %v", what, got, want)
	}
}

func expectProto(got, want proto.Message, what string) {
	if !proto.Equal(got, want) {
		fail("%s: got %v, want %v", what, got, want)
	}
}

// must fails the check when a call that should succeed failed.
func must(err error, what string) {
	if err != nil {
		fail("%s: %v", what, err)
	}
}

// expectCode fails unless err is a gRPC status with the code want.
func expectCode(err error, want codes.Code, what string) *status.Status {
	if err == nil {
		fail("%s: succeeded, want %v", what, want)
	}
	st, ok := status.FromError(err)
	if !ok {
		fail("%s: not a gRPC status: %v", what, err)
	}
	if st.Code() != want {
		fail("%s: got %v (%s), want %v", what, st.Code(), st.Message(), want)
	}
	return st
}

// fieldViolations reads the google.rpc.BadRequest of an error's details (the
// grpc-status-details-bin trailer, decoded by grpc-go into the status).
func fieldViolations(st *status.Status) []*errdetails.BadRequest_FieldViolation {
	expectEq(st.Proto().GetCode(), int32(codes.InvalidArgument), "google.rpc.Status code")
	var out []*errdetails.BadRequest_FieldViolation
	n := 0
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.BadRequest:
			n++
			out = append(out, d.GetFieldViolations()...)
		case error:
			fail("a detail that does not decode: %v", d)
		}
	}
	expectEq(n, 1, "google.rpc.BadRequest details in the error")
	return out
}

type scenario struct {
	gateway cetv1.GatewayServiceClient
	domains cetv1.DomainServiceClient
	anon    cetv1.GatewayServiceClient
	domain  string
	parent  string
	runID   string
	orgUS   string
	orgKR   string

	created *cetv1.Initiative
	updated *cetv1.Initiative
	passed  int
	failed  int
}

func (s *scenario) check(title string, fn func()) {
	start := time.Now()
	ok := func() (ok bool) {
		defer func() {
			if r := recover(); r != nil {
				ms := time.Since(start).Milliseconds()
				if f, isFailure := r.(failure); isFailure {
					fmt.Printf("FAIL  %s (%d ms): %s\n", title, ms, f.msg)
				} else {
					fmt.Printf("FAIL  %s (%d ms): panic: %v\n", title, ms, r)
				}
				ok = false
			}
		}()
		fn()
		return true
	}()
	if ok {
		s.passed++
		fmt.Printf("ok    %s (%d ms)\n", title, time.Since(start).Milliseconds())
	} else {
		s.failed++
	}
}

func ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), callTimeout)
}

func approx(p cetv1.DatePrecision, year, quarter, month int32) *cetv1.ApproximateDate {
	return &cetv1.ApproximateDate{Precision: p, Year: year, Quarter: quarter, Month: month}
}

func (s *scenario) initiative() *cetv1.Initiative {
	return &cetv1.Initiative{
		Title:      "NIST-KRISS quantum metrology (Go scenario " + s.runID + ")",
		Summary:    "Joint research on quantum metrology, with a floor on US funding.",
		Instrument: cetv1.Instrument_INSTRUMENT_COOPERATION_AGREEMENT,
		Participants: []*cetv1.Participant{
			{Organization: &cetv1.Organization{Id: s.orgUS, Name: "Go Scenario Institute US",
				CountryCode: "US", Type: cetv1.OrganizationType_ORGANIZATION_TYPE_NATIONAL_LAB_OR_INSTITUTE},
				Role: cetv1.ParticipantRole_PARTICIPANT_ROLE_LEAD},
			{Organization: &cetv1.Organization{Id: s.orgKR, Name: "Go Scenario Institute KR",
				CountryCode: "KR", Type: cetv1.OrganizationType_ORGANIZATION_TYPE_NATIONAL_LAB_OR_INSTITUTE},
				Role: cetv1.ParticipantRole_PARTICIPANT_ROLE_CO_LEAD},
		},
		// "From 2024 to 2026"; the workshop "in the third quarter of 2025".
		PlannedStart: approx(cetv1.DatePrecision_DATE_PRECISION_YEAR, 2024, 0, 0),
		PlannedEnd:   approx(cetv1.DatePrecision_DATE_PRECISION_YEAR, 2026, 0, 0),
		// Committed to in 2023 (valid time): the views "as of" 2025 count it.
		StatusDate: approx(cetv1.DatePrecision_DATE_PRECISION_YEAR, 2023, 0, 0),
		Milestones: []*cetv1.Milestone{{Id: "workshop", Title: "First joint workshop",
			Due: approx(cetv1.DatePrecision_DATE_PRECISION_QUARTER, 2025, 3, 0)}},
		// "No less than US$10.5 million" and "about 13 billion won": never
		// added together.
		Funding: []*cetv1.FundingCommitment{
			{Amount: &cetv1.Money{CurrencyCode: "USD", Units: 10_500_000},
				Qualifier: cetv1.AmountQualifier_AMOUNT_QUALIFIER_AT_LEAST, CommittingOrganizationId: s.orgUS},
			{Amount: &cetv1.Money{CurrencyCode: "KRW", Units: 13_000_000_000},
				Qualifier: cetv1.AmountQualifier_AMOUNT_QUALIFIER_ABOUT, CommittingOrganizationId: s.orgKR},
		},
		Topics: []string{"go-" + s.runID},
		Details: &cetv1.DomainDetails{Kind: &cetv1.DomainDetails_Quantum{Quantum: &cetv1.QuantumDetails{
			Platforms:  []cetv1.QuantumPlatform{cetv1.QuantumPlatform_QUANTUM_PLATFORM_ANY},
			Activities: []cetv1.QuantumActivity{cetv1.QuantumActivity_QUANTUM_ACTIVITY_RESEARCH}}}},
	}
}

// overview reads the gateway's overview as of a fixed day.
func (s *scenario) overview() *cetv1.Overview {
	c, cancel := ctx()
	defer cancel()
	asOf := &cetv1.CalendarDate{Year: 2025, Month: 6, Day: 30}
	r, err := s.gateway.GetOverview(c, &cetv1.GetOverviewRequest{AsOf: asOf, DueWithinDays: 120})
	must(err, "GetOverview")
	expectProto(r.GetAsOf(), asOf, "as_of")
	return r
}

// orgCount is how many initiatives the overview counts for an organization
// (-1 when it is not listed).
func orgCount(r *cetv1.Overview, id string) int64 {
	for _, o := range r.GetTotals().GetOrganizations() {
		if o.GetOrganizationId() == id {
			return o.GetInitiativeCount()
		}
	}
	return -1
}

func (s *scenario) readOverview() {
	r := s.overview()
	var got []cetv1.Domain
	var sum int64
	for _, d := range r.GetDomains() {
		got = append(got, d.GetDomain())
		expect(d.GetAvailable(), fmt.Sprintf("%v is available (%s)", d.GetDomain(), d.GetError()))
		sum += d.GetSummary().GetInitiativeCount()
	}
	want := []cetv1.Domain{cetv1.Domain_DOMAIN_SEMICONDUCTORS, cetv1.Domain_DOMAIN_BIOTECH,
		cetv1.Domain_DOMAIN_ENERGY, cetv1.Domain_DOMAIN_QUANTUM, cetv1.Domain_DOMAIN_AI,
		cetv1.Domain_DOMAIN_CONNECTIVITY, cetv1.Domain_DOMAIN_PARTNERSHIPS}
	expectEq(got, want, "one entry per domain, in the order of the Domain enum")
	expect(r.GetTotals().GetComplete(), "totals are complete")
	expectEq(r.GetTotals().GetInitiativeCount(), sum, "total initiatives = sum of the domains'")
	expectEq(orgCount(r, s.orgUS), int64(-1), "this run's organization is in nothing yet")
}

func (s *scenario) create() {
	c, cancel := ctx()
	defer cancel()
	id := "go-" + s.runID
	want := s.initiative()
	got, err := s.domains.CreateInitiative(c, &cetv1.CreateInitiativeRequest{
		Parent: s.parent, InitiativeId: id, Initiative: want, RequestId: "create-go-" + s.runID})
	must(err, "CreateInitiative")
	s.created = got
	expectEq(got.GetName(), s.parent+"/initiatives/"+id, "name")
	expectEq(got.GetDomain(), cetv1.Domain_DOMAIN_QUANTUM, "domain")
	expectEq(got.GetStatus(), cetv1.LifecycleStatus_LIFECYCLE_STATUS_PROPOSED, "unset status means PROPOSED")
	expect(got.GetEtag() != "", "an etag is set")
	expect(got.GetRevision() > 0, "a revision is set")
	expectProto(got.GetPlannedEnd(), want.GetPlannedEnd(), "year precision is kept")
	expectEq(len(got.GetMilestones()), 1, "milestones")
	expectProto(got.GetMilestones()[0].GetDue(), want.GetMilestones()[0].GetDue(), "quarter precision is kept")
	expectEq(got.GetMilestones()[0].GetStatus(), cetv1.MilestoneStatus_MILESTONE_STATUS_SCHEDULED,
		"unset milestone status means SCHEDULED")
	expectEq(len(got.GetFunding()), 2, "funding entries")
	for i, f := range got.GetFunding() {
		w := want.GetFunding()[i]
		expectProto(f.GetAmount(), w.GetAmount(), fmt.Sprintf("funding[%d].amount", i))
		expectEq(f.GetQualifier(), w.GetQualifier(), fmt.Sprintf("funding[%d].qualifier", i))
		expectEq(f.GetKind(), cetv1.FundingKind_FUNDING_KIND_PLEDGED, "unset funding kind means PLEDGED")
	}
	// The gateway routes a Get by name to the domain: the same record.
	got2, err := s.domains.GetInitiative(c, &cetv1.GetInitiativeRequest{Name: got.GetName()})
	must(err, "GetInitiative")
	expectProto(got2, got, "GetInitiative returns what CreateInitiative returned")
}

func (s *scenario) overviewCounts() {
	expect(s.created != nil, "the initiative was created")
	r := s.overview()
	expectEq(orgCount(r, s.orgUS), int64(1), "initiatives of "+s.orgUS)
	expectEq(orgCount(r, s.orgKR), int64(1), "initiatives of "+s.orgKR)
	var usd, krw *cetv1.FundingTotal
	for _, f := range r.GetTotals().GetFunding() {
		if f.GetTotal().GetCurrencyCode() == "USD" && f.GetQualifier() == cetv1.AmountQualifier_AMOUNT_QUALIFIER_AT_LEAST {
			usd = f
		}
		if f.GetTotal().GetCurrencyCode() == "KRW" && f.GetQualifier() == cetv1.AmountQualifier_AMOUNT_QUALIFIER_ABOUT {
			krw = f
		}
	}
	expect(usd != nil && usd.GetTotal().GetUnits() >= 10_500_000, "a USD 'at least' total holds our US$10.5 million")
	expect(krw != nil && krw.GetTotal().GetUnits() >= 13_000_000_000, "a KRW 'about' total, apart from USD")
}

func (s *scenario) update() {
	expect(s.created != nil, "the initiative was created")
	c, cancel := ctx()
	defer cancel()
	before := s.created
	got, err := s.domains.UpdateInitiative(c, &cetv1.UpdateInitiativeRequest{
		Initiative: &cetv1.Initiative{Name: before.GetName(), Etag: before.GetEtag(),
			Status: cetv1.LifecycleStatus_LIFECYCLE_STATUS_ANNOUNCED, Summary: "Announced at the dialogue."},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"status", "summary"}}})
	must(err, "UpdateInitiative with the current etag")
	s.updated = got
	expectEq(got.GetStatus(), cetv1.LifecycleStatus_LIFECYCLE_STATUS_ANNOUNCED, "status")
	expectEq(got.GetSummary(), "Announced at the dialogue.", "summary")
	expect(got.GetEtag() != before.GetEtag(), "the etag changed")
	expect(got.GetRevision() > before.GetRevision(), "the revision grew")
	expectEq(got.GetTitle(), before.GetTitle(), "fields outside the mask are kept")
	expectEq(len(got.GetFunding()), len(before.GetFunding()), "funding is kept")
	for i := range got.GetFunding() {
		expectProto(got.GetFunding()[i], before.GetFunding()[i], "funding is kept")
	}
}

func (s *scenario) staleEtag() {
	expect(s.updated != nil, "the initiative was updated")
	c, cancel := ctx()
	defer cancel()
	_, err := s.domains.UpdateInitiative(c, &cetv1.UpdateInitiativeRequest{
		Initiative: &cetv1.Initiative{Name: s.created.GetName(), Etag: s.created.GetEtag(),
			Summary: "written with a stale etag"},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"summary"}}})
	expectCode(err, codes.Aborted, "update with the etag of before the update")
	got, err := s.domains.GetInitiative(c, &cetv1.GetInitiativeRequest{Name: s.created.GetName()})
	must(err, "GetInitiative")
	expectProto(got, s.updated, "nothing changed after ABORTED")
}

func (s *scenario) badRequest() {
	expect(s.created != nil, "the initiative was created")
	c, cancel := ctx()
	defer cancel()
	bad := s.initiative()
	bad.Title = ""                                     // required
	bad.Milestones[0].Due.Quarter = 5                  // 1 to 4
	bad.Funding[0].Amount.CurrencyCode = "XYZ"         // not ISO 4217
	bad.Participants[1].Organization.CountryCode = "X" // not ISO 3166-1
	_, err := s.domains.CreateInitiative(c, &cetv1.CreateInitiativeRequest{
		Parent: s.parent, InitiativeId: "Bad_Id", Initiative: bad})
	st := expectCode(err, codes.InvalidArgument, "invalid create")
	var fields []string
	for _, v := range fieldViolations(st) {
		expect(strings.TrimSpace(v.GetDescription()) != "", "violation of "+v.GetField()+" has a description")
		fields = append(fields, v.GetField())
		fmt.Printf("      %s: %s\n", v.GetField(), v.GetDescription())
	}
	sort.Strings(fields)
	expectEq(fields, []string{
		"initiative.funding[0].amount.currency_code",
		"initiative.milestones[0].due.quarter",
		"initiative.participants[1].organization.country_code",
		"initiative.title",
		"initiative_id",
	}, "field violations")
}

func (s *scenario) watch() {
	expect(s.updated != nil, "the initiative was updated")
	c, cancel := context.WithTimeout(context.Background(), watchTimeout)
	defer cancel()
	stream, err := s.domains.WatchChanges(c, &cetv1.WatchChangesRequest{Parent: s.parent, AfterRevision: 0})
	must(err, "WatchChanges")
	// Every change of the domain from the start, oldest first; ours among
	// them. Read up to our update, then cancel the stream.
	type seen struct {
		Type     cetv1.ChangeType
		Revision int64
	}
	var ours []seen
	var last int64
	var lastOurs *cetv1.Change
	for {
		ch, err := stream.Recv()
		if err == io.EOF {
			fail("the stream ended before our update")
		}
		must(err, "reading the change stream")
		expect(ch.GetRevision() > last, fmt.Sprintf("revisions increase strictly (%d after %d)", ch.GetRevision(), last))
		last = ch.GetRevision()
		if ch.GetName() == s.created.GetName() {
			ours = append(ours, seen{ch.GetType(), ch.GetRevision()})
			lastOurs = ch
		}
		if ch.GetRevision() >= s.updated.GetRevision() {
			break
		}
	}
	expectEq(ours, []seen{
		{cetv1.ChangeType_CHANGE_TYPE_CREATED, s.created.GetRevision()},
		{cetv1.ChangeType_CHANGE_TYPE_UPDATED, s.updated.GetRevision()},
	}, "our changes, with their revisions")
	changed := append([]string(nil), lastOurs.GetChangedFields()...)
	sort.Strings(changed)
	// A status change is dated (status_date): the day it is recorded.
	expectEq(changed, []string{"status", "status_date", "summary"}, "changed fields of the update")
	expectEq(lastOurs.GetReporter(), "go-scenario", "the change is signed by the token's subject")
	expectProto(lastOurs.GetInitiative(), s.updated, "the change carries the initiative after it")
}

func (s *scenario) noToken() {
	c, cancel := ctx()
	defer cancel()
	_, err := s.anon.GetOverview(c, &cetv1.GetOverviewRequest{})
	expectCode(err, codes.Unauthenticated, "GetOverview without a token")
}

func main() {
	gateway := flag.String("gateway", os.Getenv("CETRACK_GATEWAY"), "the gateway's HOST:PORT (env CETRACK_GATEWAY)")
	flag.Parse()
	token, ca := os.Getenv("CETRACK_TOKEN"), os.Getenv("CETRACK_TLS_CA")
	if *gateway == "" || token == "" || ca == "" {
		fmt.Fprintln(os.Stderr, "set -gateway (or CETRACK_GATEWAY), CETRACK_TOKEN and CETRACK_TLS_CA")
		fmt.Println("0 passed, 1 failed")
		os.Exit(2)
	}
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	runID := hex.EncodeToString(b)
	fmt.Printf("cetrack Go client scenario: gateway %s, run %s\n", *gateway, runID)

	conn, err := dial(*gateway, ca, token)
	if err != nil {
		fmt.Fprintf(os.Stderr, "cannot connect to %s: %v\n", *gateway, err)
		fmt.Println("0 passed, 1 failed")
		os.Exit(1)
	}
	defer conn.Close()
	anonConn, err := dial(*gateway, ca, "")
	if err != nil {
		fmt.Fprintf(os.Stderr, "cannot connect to %s: %v\n", *gateway, err)
		fmt.Println("0 passed, 1 failed")
		os.Exit(1)
	}
	defer anonConn.Close()

	s := &scenario{
		gateway: cetv1.NewGatewayServiceClient(conn),
		domains: cetv1.NewDomainServiceClient(conn),
		anon:    cetv1.NewGatewayServiceClient(anonConn),
		domain:  "quantum",
		parent:  "domains/quantum",
		runID:   runID,
		orgUS:   "us-go" + runID,
		orgKR:   "kr-go" + runID,
	}
	s.check("the overview: every domain, in enum order, available; totals add up", s.readOverview)
	s.check("create an initiative with money and imprecise dates (year, quarter) in domains/quantum", s.create)
	s.check("the overview counts it: its organizations once; USD 'at least' apart from KRW 'about'", s.overviewCounts)
	s.check("update with the current etag and an update mask", s.update)
	s.check("a stale etag is refused with ABORTED and nothing changes", s.staleEtag)
	s.check("a bad request: INVALID_ARGUMENT, field violations from google.rpc.BadRequest", s.badRequest)
	s.check("WatchChanges from revision 0: our create and update, with their exact revisions", s.watch)
	s.check("a call without a token is UNAUTHENTICATED", s.noToken)
	fmt.Printf("%d passed, %d failed\n", s.passed, s.failed)
	if s.failed > 0 {
		os.Exit(1)
	}
}
