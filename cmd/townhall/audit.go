package main

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/civicstack/townhall/audit"
)

func (a *app) auditCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "Verify and query the audit log"}
	var archive, pubkey string
	verify := &cobra.Command{
		Use:   "verify",
		Short: "Verify the hash chain, or with --archive an exported archive offline; exit 5 naming the first event out of place",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if archive != "" || pubkey != "" {
				return a.verifyArchive(archive, pubkey)
			}
			p, err := a.platform(ctx)
			if err != nil {
				return err
			}
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
	verify.Flags().StringVar(&archive, "archive", "", "an archive written by Log.Archive, checked offline (needs --pubkey; no database is opened)")
	verify.Flags().StringVar(&pubkey, "pubkey", "", "the checkpoint signer's Ed25519 public key: a PEM PUBLIC KEY, or 32 bytes as hex or base64")
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

// verifyArchive checks an archive file offline against a public key file.
func (a *app) verifyArchive(archive, pubkey string) error {
	if archive == "" || pubkey == "" {
		return fmt.Errorf("%w: --archive and --pubkey go together", errUsage)
	}
	pub, err := readPublicKey(pubkey)
	if err != nil {
		return err
	}
	f, err := os.Open(archive)
	if err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	defer f.Close()
	cp, err := audit.VerifyArchive(f, pub)
	if err != nil {
		seq := "-"
		var te *audit.TamperError
		if errors.As(err, &te) {
			seq = strconv.FormatInt(te.Seq, 10)
		}
		if perr := a.print(map[string]any{"ok": false, "seq": seq, "problem": err.Error()},
			"OK\tSEQ\tPROBLEM", [][]string{{"no", seq, err.Error()}}); perr != nil {
			return perr
		}
		return fmt.Errorf("%w: %w", errNo, err)
	}
	return a.print(map[string]any{"ok": true, "checkpoint": cp.Seq, "at": cp.At, "key_id": cp.KeyID},
		"OK\tCHECKPOINT\tAT", [][]string{{"yes", strconv.FormatInt(cp.Seq, 10), cp.At.UTC().Format(time.RFC3339)}})
}

// readPublicKey reads an Ed25519 public key: PEM (PKIX "PUBLIC KEY"), or
// the 32 raw bytes written as hex or standard base64.
func readPublicKey(path string) (ed25519.PublicKey, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errUsage, err)
	}
	if block, _ := pem.Decode(raw); block != nil {
		k, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", errUsage, path, err)
		}
		pub, ok := k.(ed25519.PublicKey)
		if !ok {
			return nil, fmt.Errorf("%w: %s: not an Ed25519 public key", errUsage, path)
		}
		return pub, nil
	}
	text := strings.TrimSpace(string(raw))
	for _, decode := range []func(string) ([]byte, error){hex.DecodeString, base64.StdEncoding.DecodeString} {
		if b, err := decode(text); err == nil && len(b) == ed25519.PublicKeySize {
			return ed25519.PublicKey(b), nil
		}
	}
	return nil, fmt.Errorf("%w: %s: not a PEM, hex or base64 Ed25519 public key", errUsage, path)
}
