// Package policytest runs policy test files: YAML fixtures (a registry,
// locations, users, memberships, grants, settings, organisations, links)
// followed by expectations (checks, filters, who-can and what-can lists),
// each file on its own throw-away embedded SQLite database, built through
// townhall's public API. The same files run in a host's go test
//
//	func TestPolicies(t *testing.T) { policytest.Run(t, "testdata/*.yaml") }
//
// and from a shell with `townhall policy test FILE...`, which prints each
// failing expectation with the decision's explanation and exits non-zero.
//
// A file:
//
//	registry: registry.yaml          # a path (relative to the file), or the registry inline;
//	                                 # omitted: access.DefaultRegistry()
//	levels: [region, district, municipality, village]   # optional
//	now: "2026-01-05T09:00:00Z"      # optional: the clock for link windows
//	locations:
//	  - {id: R, level: region}
//	  - {id: W, level: municipality, parent: R}
//	departments:
//	  - {id: roads-w, municipality: W, name: Roads, categories: [roads]}
//	users:                           # username defaults to the id, active to true
//	  - {id: root, super_admin: true}
//	  - {id: olga}
//	  - {id: bot, kind: technical}
//	  - {id: gone, active: false}
//	settings:
//	  - {municipality: W, module: equipment, enabled: false}
//	  - {municipality: W, approval_required: false}
//	members:                         # profile + first grant; approved and active default to true
//	  - {user: olga, location: W, role: operator, categories: [roads], approved: true, active: true}
//	grants:
//	  - {user: pa, role: platform_admin, location: "*"}
//	organisations:
//	  - {id: hf1, location: W, kind: health_facility, services: [claims]}
//	links:
//	  - {user: olga, organisation: hf1, from: "2026-01-01T00:00:00Z"}
//	checks:                          # user "" or omitted: anonymous
//	  - {user: olga, municipality: W, module: occurrences, action: update, allow: true, reason: role}
//	  - {user: olga, module: occurrences, action: update, resource: {location: W, category: lighting}, allow: false, reason: category}
//	  - {user: olga, module: nope, action: x, municipality: W, error: unknown module}
//	filters:                         # Checker.LocationFilter
//	  - {user: olga, module: occurrences, action: update, contains: [W], excludes: [R]}
//	who_can:                         # Checker.Subjects: exactly these users
//	  - {module: users, action: manage, location: W, users: [pa, root]}
//	what_can:                        # Checker.Permissions: exactly these actions
//	  - {user: olga, municipality: W, actions: [occurrences.create, occurrences.update, occurrences.view, occupancy.view]}
//
// testdata/example.yaml in this package is a complete file in this shape.
//
// A check compares allow and, when given, reason, role and domain. Unknown
// keys, malformed YAML and fixtures that cannot be built (an unknown role,
// a missing parent) are errors naming the place, not failures.
package policytest
