// Package townhall is access management for municipal and public-service
// platforms, embedded in a host service that owns the HTTP layer and hands
// townhall a *gorm.DB.
//
// It answers three questions and keeps the records that prove the answers:
//
//  1. May this subject use this module action here? (access.Checker.Check,
//     access.Checker.UserCanAccessModule)
//  2. Which records may this subject see? (access.Checker.LocationFilter,
//     access.Checker.Filter: GORM scopes that agree with Check)
//  3. Who may change who may do what? (access.Admin: grants without
//     escalation, approval, deactivation, deletion, impersonation)
//
// Open migrates the database (idempotent, safe when several processes open
// it at once), loads the in-memory snapshot that decisions are made from,
// and wires the stores:
//
//	db, err := townhall.OpenSQLite("townhall.db")
//	p, err := townhall.Open(ctx, db)
//	defer p.Close()
//	ok, err := p.Checker.UserCanAccessModule(ctx, access.Subject{UserID: "u1"}, "occurrences", "view")
//
// The packages: users (users, credentials, profiles, departments), location
// (the location tree and its filter), affiliation (organisations and user
// links), audit (the hash-chained audit log) and access (registry, checker,
// admin, HTTP middleware).
//
// # Observability
//
// townhall is quiet unless told otherwise: WithLogger takes a *slog.Logger
// (default: discard), WithTracerProvider and WithMeterProvider take
// OpenTelemetry providers (default: the global ones, no-ops until the host
// sets them). Only the OpenTelemetry API is a dependency; the SDK and the
// exporters are the host's choice (examples/httpserver exports to
// Prometheus).
//
// Logs: one record per failure of background work (a sync, the PostgreSQL
// LISTEN session, its reconnection, an audit write, audit events dropped
// because the queue was full) at Warn or Error, with its recovery at Info;
// one per refused Admin change at Info (change type, actor, impersonator,
// target user, location, role and reason: IDs only); one per rewrite of
// the registry's policy rows at Open. No record carries a password,
// token, key or email.
//
// Metrics (instrumentation scope github.com/civicstack/townhall; the
// Prometheus exporter turns dots into underscores and adds _total to
// counters and the unit to names, e.g. townhall_checks_total,
// townhall_check_duration_seconds):
//
//	name                             instrument  unit        attributes
//	townhall.checks                  counter     {check}     townhall.outcome (allowed, denied, error), townhall.reason
//	townhall.check.duration          histogram   s           townhall.outcome; one check in 64, at random
//	townhall.admin.changes           counter     {change}    townhall.change.type (the audit event type), townhall.outcome (applied, refused, failed)
//	townhall.snapshot.revision       gauge       {revision}
//	townhall.sync.lag                gauge       {revision}  revisions behind the database head last read
//	townhall.sync.age                gauge       s           since the last successful sync, by WithClock's clock
//	townhall.sync.failures           counter     {failure}
//	townhall.listener.reconnects     counter     {reconnect} PostgreSQL LISTEN sessions after the first
//	townhall.snapshot.load.duration  histogram   s           full loads: at Open, and a replica far behind
//	townhall.snapshot.size           gauge       {entity}    townhall.snapshot.entity (users, grants, locations)
//	townhall.audit.queue.depth       gauge       {event}     events waiting for the audit writer
//	townhall.audit.queue.capacity    gauge       {event}
//	townhall.audit.dropped           counter     {event}     queue full, invalid, or lost with a failed write
//	townhall.audit.write.failures    counter     {failure}
//
// A check only adds one to an atomic counter (read when the meter
// collects) and, one time in 64, reads the clock twice and records the
// histogram: it stays allocation-free, within a few per cent of its speed
// without metrics (BenchmarkCheckMetricsRatio). WithMeterProvider with
// OpenTelemetry's no-op provider counts nothing at all.
//
// Spans: townhall.Open; townhall.Admin.<change type> for every Admin
// change (its transaction and snapshot refresh, or the audit of its
// refusal); townhall.Checker.Sync (background syncs only when they find
// changes or fail); townhall.Checker.Filter; and "townhall.Require
// <module>.<action>", a child of the request's span that ends before the
// next handler runs. Checks have spans only with WithCheckSpans.
//
// Platform.Health reports the revision, how far behind the database it is,
// the last sync and its error, the listener's state and the audit queue:
// what a readiness probe needs.
package townhall
