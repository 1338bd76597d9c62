package main

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/civicstack/townhall/audit"
)

func (a *app) auditCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "Verify and query the audit log"}
	verify := &cobra.Command{
		Use:   "verify",
		Short: "Verify the hash chain; exit 5 naming the first event out of place",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			p, err := a.platform(ctx)
			if err != nil {
				return err
			}
			// Not wired yet: --archive FILE --pubkey FILE would call
			// audit.VerifyArchive offline, and checkpoints would go to
			// Verify as audit.WithCheckpoints.
			err = p.Audit.Verify(ctx)
			var te *audit.TamperError
			if errors.As(err, &te) {
				if perr := a.print(map[string]any{"ok": false, "seq": te.Seq, "problem": te.Problem},
					"OK\tSEQ\tPROBLEM", [][]string{{"no", strconv.FormatInt(te.Seq, 10), te.Problem}}); perr != nil {
					return perr
				}
				return fmt.Errorf("%w: %w", errNo, err)
			}
			if err != nil {
				return err
			}
			head, err := p.Audit.Head(ctx)
			if err != nil {
				return err
			}
			return a.print(map[string]any{"ok": true, "head": head}, "OK\tHEAD", [][]string{{"yes", strconv.FormatInt(head, 10)}})
		},
	}
	var q audit.Query
	var since, until string
	query := &cobra.Command{
		Use:   "query",
		Short: "List events (filters as in audit.Query), ascending by Seq",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			var err error
			if q.Since, err = parseTime("--since", since); err != nil {
				return err
			}
			if q.Until, err = parseTime("--until", until); err != nil {
				return err
			}
			p, err := a.platform(ctx)
			if err != nil {
				return err
			}
			events, err := p.Audit.Query(ctx, q)
			if err != nil {
				return err
			}
			rows := make([][]string, len(events))
			for i, e := range events {
				outcome := "-"
				if e.Allowed != nil {
					outcome = map[bool]string{true: "allowed", false: "denied"}[*e.Allowed]
				}
				rows[i] = []string{strconv.FormatInt(e.Seq, 10), e.At.UTC().Format(time.RFC3339), e.Type, orDash(e.ActorID),
					orDash(e.UserID), orDash(e.LocationID), orDash(e.Module), orDash(e.Action), outcome, orDash(e.Reason)}
			}
			if events == nil {
				events = []audit.Event{}
			}
			return a.print(events, "SEQ\tAT\tTYPE\tACTOR\tUSER\tLOCATION\tMODULE\tACTION\tOUTCOME\tREASON", rows)
		},
	}
	fl := query.Flags()
	fl.StringVar(&q.ActorID, "actor", "", "actor ID")
	fl.StringVar(&q.UserID, "user", "", "target user ID")
	fl.StringVar(&q.LocationID, "location", "", "location ID")
	fl.StringVar(&q.Type, "type", "", "event type, such as grant or decision_denied")
	fl.StringVar(&since, "since", "", "from this time (RFC 3339), inclusive")
	fl.StringVar(&until, "until", "", "up to this time (RFC 3339), exclusive")
	fl.IntVar(&q.Limit, "limit", 0, "at most this many events (0: 100; at most 10000)")
	fl.Int64Var(&q.AfterSeq, "after", 0, "continue after this Seq")
	cmd.AddCommand(verify, query)
	return cmd
}

func parseTime(flag, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: %s: %w", errUsage, flag, err)
	}
	return t, nil
}
