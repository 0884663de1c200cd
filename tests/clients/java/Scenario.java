// An integrator's scenario against a running cetrack system, through a Java
// client generated from proto/ with Debian's protoc and grpc_java_plugin (see
// generate.sh), compiled and run against Debian's grpc-java (Netty transport),
// protobuf-java and Google common protos jars.
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
// Usage: java Scenario HOST:PORT   (default: CETRACK_GATEWAY). The last line
// printed is `N passed, M failed`; the exit status is 0 only when nothing
// failed.

import com.google.protobuf.Any;
import com.google.protobuf.FieldMask;
import com.google.rpc.BadRequest;
import io.grpc.CallCredentials;
import io.grpc.ChannelCredentials;
import io.grpc.Context;
import io.grpc.Grpc;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.TlsChannelCredentials;
import io.grpc.protobuf.StatusProto;
import java.io.File;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Iterator;
import java.util.List;
import java.util.Objects;
import java.util.UUID;
import java.util.concurrent.Executor;
import java.util.concurrent.TimeUnit;
import org.cetrack.cet.v1.AmountQualifier;
import org.cetrack.cet.v1.ApproximateDate;
import org.cetrack.cet.v1.CalendarDate;
import org.cetrack.cet.v1.Change;
import org.cetrack.cet.v1.ChangeType;
import org.cetrack.cet.v1.CreateInitiativeRequest;
import org.cetrack.cet.v1.DatePrecision;
import org.cetrack.cet.v1.Domain;
import org.cetrack.cet.v1.DomainDetails;
import org.cetrack.cet.v1.DomainOverview;
import org.cetrack.cet.v1.DomainServiceGrpc;
import org.cetrack.cet.v1.FundingCommitment;
import org.cetrack.cet.v1.FundingKind;
import org.cetrack.cet.v1.FundingTotal;
import org.cetrack.cet.v1.GatewayServiceGrpc;
import org.cetrack.cet.v1.GetInitiativeRequest;
import org.cetrack.cet.v1.GetOverviewRequest;
import org.cetrack.cet.v1.Initiative;
import org.cetrack.cet.v1.Instrument;
import org.cetrack.cet.v1.LifecycleStatus;
import org.cetrack.cet.v1.Milestone;
import org.cetrack.cet.v1.MilestoneStatus;
import org.cetrack.cet.v1.Money;
import org.cetrack.cet.v1.Organization;
import org.cetrack.cet.v1.OrganizationCount;
import org.cetrack.cet.v1.OrganizationType;
import org.cetrack.cet.v1.Overview;
import org.cetrack.cet.v1.Participant;
import org.cetrack.cet.v1.ParticipantRole;
import org.cetrack.cet.v1.QuantumActivity;
import org.cetrack.cet.v1.QuantumDetails;
import org.cetrack.cet.v1.QuantumPlatform;
import org.cetrack.cet.v1.UpdateInitiativeRequest;
import org.cetrack.cet.v1.WatchChangesRequest;

public final class Scenario {
  /** How long one unary call may take, in seconds. */
  static final long CALL_TIMEOUT_S = 10;
  /** How long the change stream may take to deliver what we wait for. */
  static final long WATCH_TIMEOUT_S = 15;

  /** Sends `authorization: Bearer <token>` with every call (over TLS only). */
  static final class BearerToken extends CallCredentials {
    private static final Metadata.Key<String> AUTHORIZATION =
        Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER);
    private final String token;

    BearerToken(String token) {
      this.token = token;
    }

    @Override
    public void applyRequestMetadata(RequestInfo info, Executor executor, MetadataApplier applier) {
      Metadata headers = new Metadata();
      headers.put(AUTHORIZATION, "Bearer " + token);
      applier.apply(headers);
    }

    @Override
    public void thisUsesUnstableApi() {}
  }

  /** A channel to addr over TLS that trusts the CA in the PEM file ca. */
  static ManagedChannel channel(String addr, String ca) throws IOException {
    ChannelCredentials tls = TlsChannelCredentials.newBuilder().trustManager(new File(ca)).build();
    return Grpc.newChannelBuilder(addr, tls).build();
  }

  /** A failed expectation of the scenario. */
  static final class CheckFailed extends RuntimeException {
    CheckFailed(String message) {
      super(message);
    }
  }

  static void expect(boolean cond, String what) {
    if (!cond) {
      throw new CheckFailed(what);
    }
  }

  static void expectEq(Object got, Object want, String what) {
    if (!Objects.equals(got, want)) {
      throw new CheckFailed(what + ": got " + got + ", want " + want);
    }
  }

  interface Call {
    void run() throws Exception;
  }

  /** Runs call, expects it to fail with code, returns the exception. */
  static StatusRuntimeException expectCode(Call call, Status.Code code, String what) {
    try {
      call.run();
    } catch (StatusRuntimeException e) {
      if (e.getStatus().getCode() != code) {
        throw new CheckFailed(what + ": got " + e.getStatus() + ", want " + code);
      }
      return e;
    } catch (Exception e) {
      throw new CheckFailed(what + ": " + e);
    }
    throw new CheckFailed(what + ": succeeded, want " + code);
  }

  /**
   * The field violations of an INVALID_ARGUMENT error: the google.rpc.Status of
   * the grpc-status-details-bin trailer, and the google.rpc.BadRequest in its
   * details.
   */
  static List<BadRequest.FieldViolation> fieldViolations(StatusRuntimeException e)
      throws Exception {
    com.google.rpc.Status status = StatusProto.fromThrowable(e);
    expect(status != null, "the error carries a google.rpc.Status in its trailers");
    expectEq(status.getCode(), Status.Code.INVALID_ARGUMENT.value(), "google.rpc.Status code");
    List<BadRequest.FieldViolation> out = new ArrayList<>();
    int n = 0;
    for (Any detail : status.getDetailsList()) {
      if (detail.is(BadRequest.class)) {
        n++;
        out.addAll(detail.unpack(BadRequest.class).getFieldViolationsList());
      }
    }
    expectEq(n, 1, "google.rpc.BadRequest details in the error");
    return out;
  }

  static ApproximateDate approx(DatePrecision p, int year, int quarter, int month) {
    return ApproximateDate.newBuilder()
        .setPrecision(p)
        .setYear(year)
        .setQuarter(quarter)
        .setMonth(month)
        .build();
  }

  private final GatewayServiceGrpc.GatewayServiceBlockingStub gateway;
  private final DomainServiceGrpc.DomainServiceBlockingStub domains;
  private final GatewayServiceGrpc.GatewayServiceBlockingStub anonymous;
  private final String parent = "domains/quantum";
  private final String runId;
  private final String orgUs;
  private final String orgKr;
  private Initiative created;
  private Initiative updated;
  private int passed;
  private int failed;

  Scenario(ManagedChannel channel, String token, String runId) {
    BearerToken creds = new BearerToken(token);
    this.gateway = GatewayServiceGrpc.newBlockingStub(channel).withCallCredentials(creds);
    this.domains = DomainServiceGrpc.newBlockingStub(channel).withCallCredentials(creds);
    this.anonymous = GatewayServiceGrpc.newBlockingStub(channel);
    this.runId = runId;
    this.orgUs = "us-java" + runId;
    this.orgKr = "kr-java" + runId;
  }

  GatewayServiceGrpc.GatewayServiceBlockingStub gateway() {
    return gateway.withDeadlineAfter(CALL_TIMEOUT_S, TimeUnit.SECONDS);
  }

  DomainServiceGrpc.DomainServiceBlockingStub domains() {
    return domains.withDeadlineAfter(CALL_TIMEOUT_S, TimeUnit.SECONDS);
  }

  void check(String title, Call step) {
    long start = System.nanoTime();
    try {
      step.run();
      passed++;
      System.out.printf("ok    %s (%d ms)%n", title, (System.nanoTime() - start) / 1_000_000);
    } catch (CheckFailed | StatusRuntimeException e) {
      failed++;
      System.out.printf(
          "FAIL  %s (%d ms): %s%n", title, (System.nanoTime() - start) / 1_000_000, e.getMessage());
    } catch (Exception e) {
      failed++;
      System.out.printf(
          "FAIL  %s (%d ms): %s%n", title, (System.nanoTime() - start) / 1_000_000, e);
      e.printStackTrace(System.out);
    }
    System.out.flush();
  }

  Initiative initiative() {
    OrganizationType lab = OrganizationType.ORGANIZATION_TYPE_NATIONAL_LAB_OR_INSTITUTE;
    return Initiative.newBuilder()
        .setTitle("NIST-KRISS quantum metrology (Java scenario " + runId + ")")
        .setSummary("Joint research on quantum metrology, with a floor on US funding.")
        .setInstrument(Instrument.INSTRUMENT_COOPERATION_AGREEMENT)
        .addParticipants(Participant.newBuilder()
            .setOrganization(Organization.newBuilder().setId(orgUs)
                .setName("Java Scenario Institute US").setCountryCode("US").setType(lab))
            .setRole(ParticipantRole.PARTICIPANT_ROLE_LEAD))
        .addParticipants(Participant.newBuilder()
            .setOrganization(Organization.newBuilder().setId(orgKr)
                .setName("Java Scenario Institute KR").setCountryCode("KR").setType(lab))
            .setRole(ParticipantRole.PARTICIPANT_ROLE_CO_LEAD))
        // "From 2024 to 2026"; the workshop "in the third quarter of 2025".
        .setPlannedStart(approx(DatePrecision.DATE_PRECISION_YEAR, 2024, 0, 0))
        .setPlannedEnd(approx(DatePrecision.DATE_PRECISION_YEAR, 2026, 0, 0))
        // Committed to in 2023 (valid time): the views "as of" 2025 count it.
        .setStatusDate(approx(DatePrecision.DATE_PRECISION_YEAR, 2023, 0, 0))
        .addMilestones(Milestone.newBuilder().setId("workshop").setTitle("First joint workshop")
            .setDue(approx(DatePrecision.DATE_PRECISION_QUARTER, 2025, 3, 0)))
        // "No less than US$10.5 million" and "about 13 billion won": never
        // added together.
        .addFunding(FundingCommitment.newBuilder()
            .setAmount(Money.newBuilder().setCurrencyCode("USD").setUnits(10_500_000))
            .setQualifier(AmountQualifier.AMOUNT_QUALIFIER_AT_LEAST)
            .setCommittingOrganizationId(orgUs))
        .addFunding(FundingCommitment.newBuilder()
            .setAmount(Money.newBuilder().setCurrencyCode("KRW").setUnits(13_000_000_000L))
            .setQualifier(AmountQualifier.AMOUNT_QUALIFIER_ABOUT)
            .setCommittingOrganizationId(orgKr))
        .addTopics("java-" + runId)
        .setDetails(DomainDetails.newBuilder().setQuantum(QuantumDetails.newBuilder()
            .addPlatforms(QuantumPlatform.QUANTUM_PLATFORM_ANY)
            .addActivities(QuantumActivity.QUANTUM_ACTIVITY_RESEARCH)))
        .build();
  }

  /** The gateway's overview as of a fixed day. */
  Overview overview() {
    CalendarDate asOf = CalendarDate.newBuilder().setYear(2025).setMonth(6).setDay(30).build();
    Overview r = gateway().getOverview(
        GetOverviewRequest.newBuilder().setAsOf(asOf).setDueWithinDays(120).build());
    expectEq(r.getAsOf(), asOf, "as_of");
    return r;
  }

  /** How many initiatives the overview counts for an organization; -1 when none. */
  static long orgCount(Overview r, String id) {
    for (OrganizationCount o : r.getTotals().getOrganizationsList()) {
      if (o.getOrganizationId().equals(id)) {
        return o.getInitiativeCount();
      }
    }
    return -1;
  }

  void readOverview() {
    Overview r = overview();
    List<Domain> got = new ArrayList<>();
    long sum = 0;
    for (DomainOverview d : r.getDomainsList()) {
      got.add(d.getDomain());
      expect(d.getAvailable(), d.getDomain() + " is available (" + d.getError() + ")");
      sum += d.getSummary().getInitiativeCount();
    }
    expectEq(got, Arrays.asList(Domain.DOMAIN_SEMICONDUCTORS, Domain.DOMAIN_BIOTECH,
        Domain.DOMAIN_ENERGY, Domain.DOMAIN_QUANTUM, Domain.DOMAIN_AI,
        Domain.DOMAIN_CONNECTIVITY, Domain.DOMAIN_PARTNERSHIPS),
        "one entry per domain, in the order of the Domain enum");
    expect(r.getTotals().getComplete(), "totals are complete");
    expectEq(r.getTotals().getInitiativeCount(), sum, "total initiatives = sum of the domains'");
    expectEq(orgCount(r, orgUs), -1L, "this run's organization is in nothing yet");
  }

  void create() {
    String id = "java-" + runId;
    Initiative want = initiative();
    Initiative got = domains().createInitiative(CreateInitiativeRequest.newBuilder()
        .setParent(parent).setInitiativeId(id).setInitiative(want)
        .setRequestId("create-java-" + runId).build());
    created = got;
    expectEq(got.getName(), parent + "/initiatives/" + id, "name");
    expectEq(got.getDomain(), Domain.DOMAIN_QUANTUM, "domain");
    expectEq(got.getStatus(), LifecycleStatus.LIFECYCLE_STATUS_PROPOSED,
        "unset status means PROPOSED");
    expect(!got.getEtag().isEmpty(), "an etag is set");
    expect(got.getRevision() > 0, "a revision is set");
    expectEq(got.getPlannedEnd(), want.getPlannedEnd(), "year precision is kept");
    expectEq(got.getMilestonesCount(), 1, "milestones");
    expectEq(got.getMilestones(0).getDue(), want.getMilestones(0).getDue(),
        "quarter precision is kept");
    expectEq(got.getMilestones(0).getStatus(), MilestoneStatus.MILESTONE_STATUS_SCHEDULED,
        "unset milestone status means SCHEDULED");
    expectEq(got.getFundingCount(), 2, "funding entries");
    for (int i = 0; i < 2; i++) {
      FundingCommitment f = got.getFunding(i);
      expectEq(f.getAmount(), want.getFunding(i).getAmount(), "funding[" + i + "].amount");
      expectEq(f.getQualifier(), want.getFunding(i).getQualifier(),
          "funding[" + i + "].qualifier");
      expectEq(f.getKind(), FundingKind.FUNDING_KIND_PLEDGED, "unset funding kind means PLEDGED");
    }
    // The gateway routes a Get by name to the domain: the same record.
    Initiative again = domains().getInitiative(
        GetInitiativeRequest.newBuilder().setName(got.getName()).build());
    expectEq(again, got, "GetInitiative returns what CreateInitiative returned");
  }

  void overviewCounts() {
    expect(created != null, "the initiative was created");
    Overview r = overview();
    expectEq(orgCount(r, orgUs), 1L, "initiatives of " + orgUs);
    expectEq(orgCount(r, orgKr), 1L, "initiatives of " + orgKr);
    FundingTotal usd = null;
    FundingTotal krw = null;
    for (FundingTotal f : r.getTotals().getFundingList()) {
      String cur = f.getTotal().getCurrencyCode();
      if (cur.equals("USD") && f.getQualifier() == AmountQualifier.AMOUNT_QUALIFIER_AT_LEAST) {
        usd = f;
      }
      if (cur.equals("KRW") && f.getQualifier() == AmountQualifier.AMOUNT_QUALIFIER_ABOUT) {
        krw = f;
      }
    }
    expect(usd != null && usd.getTotal().getUnits() >= 10_500_000,
        "a USD 'at least' total holds our US$10.5 million");
    expect(krw != null && krw.getTotal().getUnits() >= 13_000_000_000L,
        "a KRW 'about' total, apart from USD");
  }

  void update() {
    expect(created != null, "the initiative was created");
    Initiative before = created;
    Initiative got = domains().updateInitiative(UpdateInitiativeRequest.newBuilder()
        .setInitiative(Initiative.newBuilder().setName(before.getName()).setEtag(before.getEtag())
            .setStatus(LifecycleStatus.LIFECYCLE_STATUS_ANNOUNCED)
            .setSummary("Announced at the dialogue."))
        .setUpdateMask(FieldMask.newBuilder().addPaths("status").addPaths("summary"))
        .build());
    updated = got;
    expectEq(got.getStatus(), LifecycleStatus.LIFECYCLE_STATUS_ANNOUNCED, "status");
    expectEq(got.getSummary(), "Announced at the dialogue.", "summary");
    expect(!got.getEtag().equals(before.getEtag()), "the etag changed");
    expect(got.getRevision() > before.getRevision(), "the revision grew");
    expectEq(got.getTitle(), before.getTitle(), "fields outside the mask are kept");
    expectEq(got.getFundingList(), before.getFundingList(), "funding is kept");
  }

  void staleEtag() {
    expect(updated != null, "the initiative was updated");
    expectCode(() -> domains().updateInitiative(UpdateInitiativeRequest.newBuilder()
            .setInitiative(Initiative.newBuilder().setName(created.getName())
                .setEtag(created.getEtag()).setSummary("written with a stale etag"))
            .setUpdateMask(FieldMask.newBuilder().addPaths("summary"))
            .build()),
        Status.Code.ABORTED, "update with the etag of before the update");
    Initiative got = domains().getInitiative(
        GetInitiativeRequest.newBuilder().setName(created.getName()).build());
    expectEq(got, updated, "nothing changed after ABORTED");
  }

  void badRequest() throws Exception {
    expect(created != null, "the initiative was created");
    Initiative.Builder bad = initiative().toBuilder();
    bad.setTitle(""); // required
    bad.getMilestonesBuilder(0).getDueBuilder().setQuarter(5); // 1 to 4
    bad.getFundingBuilder(0).getAmountBuilder().setCurrencyCode("XYZ"); // not ISO 4217
    bad.getParticipantsBuilder(1).getOrganizationBuilder().setCountryCode("X"); // not ISO 3166-1
    StatusRuntimeException e = expectCode(() -> domains().createInitiative(
            CreateInitiativeRequest.newBuilder().setParent(parent).setInitiativeId("Bad_Id")
                .setInitiative(bad).build()),
        Status.Code.INVALID_ARGUMENT, "invalid create");
    List<String> fields = new ArrayList<>();
    for (BadRequest.FieldViolation v : fieldViolations(e)) {
      expect(!v.getDescription().isBlank(), "violation of " + v.getField() + " has a description");
      fields.add(v.getField());
      System.out.printf("      %s: %s%n", v.getField(), v.getDescription());
    }
    Collections.sort(fields);
    expectEq(fields, Arrays.asList(
        "initiative.funding[0].amount.currency_code",
        "initiative.milestones[0].due.quarter",
        "initiative.participants[1].organization.country_code",
        "initiative.title",
        "initiative_id"), "field violations");
  }

  void watch() {
    expect(updated != null, "the initiative was updated");
    // Every change of the domain from the start, oldest first; ours among
    // them. Read up to our update, then cancel the stream.
    List<String> ours = new ArrayList<>();
    Change[] lastOurs = new Change[1];
    Context.CancellableContext stream = Context.current().withCancellation();
    try {
      stream.run(() -> {
        Iterator<Change> changes = domains.withDeadlineAfter(WATCH_TIMEOUT_S, TimeUnit.SECONDS)
            .watchChanges(WatchChangesRequest.newBuilder().setParent(parent)
                .setAfterRevision(0).build());
        long last = 0;
        while (true) {
          expect(changes.hasNext(), "the stream ended before our update");
          Change ch = changes.next();
          expect(ch.getRevision() > last,
              "revisions increase strictly (" + ch.getRevision() + " after " + last + ")");
          last = ch.getRevision();
          if (ch.getName().equals(created.getName())) {
            ours.add(ch.getType() + "@" + ch.getRevision());
            lastOurs[0] = ch;
          }
          if (ch.getRevision() >= updated.getRevision()) {
            break;
          }
        }
      });
    } finally {
      stream.cancel(null);
    }
    expectEq(ours, Arrays.asList(
        ChangeType.CHANGE_TYPE_CREATED + "@" + created.getRevision(),
        ChangeType.CHANGE_TYPE_UPDATED + "@" + updated.getRevision()),
        "our changes, with their revisions");
    List<String> changed = new ArrayList<>(lastOurs[0].getChangedFieldsList());
    Collections.sort(changed);
    // A status change is dated (status_date): the day it is recorded.
    expectEq(changed, Arrays.asList("status", "status_date", "summary"), "changed fields of the update");
    expectEq(lastOurs[0].getReporter(), "java-scenario", "the change is signed by the token's subject");
    expectEq(lastOurs[0].getInitiative(), updated, "the change carries the initiative after it");
  }

  void noToken() {
    expectCode(() -> anonymous.withDeadlineAfter(CALL_TIMEOUT_S, TimeUnit.SECONDS)
            .getOverview(GetOverviewRequest.getDefaultInstance()),
        Status.Code.UNAUTHENTICATED, "GetOverview without a token");
  }

  int run() {
    check("the overview: every domain, in enum order, available; totals add up",
        this::readOverview);
    check("create an initiative with money and imprecise dates (year, quarter) in domains/quantum",
        this::create);
    check("the overview counts it: its organizations once; USD 'at least' apart from KRW 'about'",
        this::overviewCounts);
    check("update with the current etag and an update mask", this::update);
    check("a stale etag is refused with ABORTED and nothing changes", this::staleEtag);
    check("a bad request: INVALID_ARGUMENT, field violations from google.rpc.BadRequest",
        this::badRequest);
    check("WatchChanges from revision 0: our create and update, with their exact revisions",
        this::watch);
    check("a call without a token is UNAUTHENTICATED", this::noToken);
    System.out.printf("%d passed, %d failed%n", passed, failed);
    return failed == 0 ? 0 : 1;
  }

  public static void main(String[] args) throws Exception {
    String addr = args.length > 0 ? args[0] : System.getenv("CETRACK_GATEWAY");
    String token = System.getenv("CETRACK_TOKEN");
    String ca = System.getenv("CETRACK_TLS_CA");
    if (addr == null || addr.isEmpty() || token == null || token.isEmpty() || ca == null
        || ca.isEmpty()) {
      System.err.println("give the gateway's HOST:PORT (or CETRACK_GATEWAY), CETRACK_TOKEN and"
          + " CETRACK_TLS_CA");
      System.out.println("0 passed, 1 failed");
      System.exit(2);
    }
    String runId = UUID.randomUUID().toString().substring(0, 8);
    System.out.printf("cetrack Java client scenario: gateway %s, run %s%n", addr, runId);
    ManagedChannel channel = channel(addr, ca);
    int rc;
    try {
      rc = new Scenario(channel, token, runId).run();
    } finally {
      channel.shutdownNow();
      channel.awaitTermination(5, TimeUnit.SECONDS);
    }
    System.exit(rc);
  }
}
