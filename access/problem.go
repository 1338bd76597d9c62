package access

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/civicstack/townhall/location"
	"github.com/civicstack/townhall/users"
)

// Problem is an RFC 9457 problem details body, as Require and the
// Authenticator answer. Host handlers write their own refusals with
// WriteProblem, so every refusal of a service looks the same.
type Problem struct {
	Type   string `json:"type"` // "about:blank" unless set
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
}

// WriteProblem writes p as application/problem+json with status p.Status
// (500 when it is not a valid HTTP status).
func WriteProblem(w http.ResponseWriter, p Problem) {
	if p.Status < 100 || p.Status > 999 {
		p.Status = http.StatusInternalServerError
	}
	if p.Type == "" {
		p.Type = "about:blank"
	}
	if p.Title == "" {
		p.Title = http.StatusText(p.Status)
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

// ProblemFor maps the subject, request and outcome of a Check (or
// CheckModule) to the answer Require gives, and reports false when the
// request was allowed and there is nothing to answer:
//
//   - a subject naming an unknown user, or a dead impersonation: 401;
//   - an unknown municipality or resource location: 404;
//   - malformed input: 400;
//   - any other error: 500, never an allow;
//   - denied and anonymous: 401;
//   - denied and signed in: 403, its detail naming the reason.
func ProblemFor(s Subject, req Request, d Decision, err error) (Problem, bool) {
	switch {
	case errors.Is(err, users.ErrNotFound), errors.Is(err, ErrInvalidToken):
		return Problem{Status: http.StatusUnauthorized, Title: "Unauthorized", Detail: "the subject is not a known, signed-in user"}, true
	case errors.Is(err, location.ErrNotFound):
		return Problem{Status: http.StatusNotFound, Title: "Not found", Detail: "unknown municipality or location"}, true
	case errors.Is(err, ErrInvalidInput):
		return Problem{Status: http.StatusBadRequest, Title: "Bad request", Detail: "malformed municipality or resource"}, true
	case err != nil:
		return Problem{Status: http.StatusInternalServerError, Title: "Internal error", Detail: "the access decision failed"}, true
	case d.Allowed:
		return Problem{}, false
	case s.UserID == "":
		return Problem{Status: http.StatusUnauthorized, Title: "Unauthorized", Detail: "sign in to " + req.Action + " " + req.Module}, true
	}
	return Problem{Status: http.StatusForbidden, Title: "Forbidden",
		Detail: "not allowed to " + req.Action + " " + req.Module + " (" + string(d.Reason) + ")"}, true
}

// notFoundProblem is the answer of WithNotFoundOnDeny and of a resource
// function that finds no record.
var notFoundProblem = Problem{Status: http.StatusNotFound, Title: "Not found", Detail: "no such resource"}

// problem writes a problem with this status, title and detail.
func problem(w http.ResponseWriter, status int, title, detail string) {
	WriteProblem(w, Problem{Status: status, Title: title, Detail: detail})
}
