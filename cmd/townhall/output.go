package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
)

// print writes v as indented JSON with --json, otherwise the rows as a
// table under header (tab-separated columns).
func (a *app) print(v any, header string, rows [][]string) error {
	if a.json {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	if header != "" {
		fmt.Fprintln(tw, header)
	}
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// done reports a change that prints nothing else.
func (a *app) done(v any, format string, args ...any) error {
	if a.json {
		return a.print(v, "", nil)
	}
	_, err := fmt.Fprintf(a.stdout, format+"\n", args...)
	return err
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
