package dbx

import (
	"strings"

	"gorm.io/gorm/clause"
)

// MaxIdentLen is the longest identifier ParseColumn accepts (MySQL's limit).
const MaxIdentLen = 64

// ParseColumn parses a column reference given by a host for the SQL that
// townhall's filters build: an identifier (a letter or '_', then letters,
// digits or '_', at most MaxIdentLen bytes), optionally qualified by a table
// or alias identifier ("t.col"). The result is quoted by the dialect when
// built, never pasted into SQL as text. ok is false for anything else.
func ParseColumn(ref string) (col clause.Column, ok bool) {
	table, name, qualified := strings.Cut(ref, ".")
	if !qualified {
		table, name = "", ref
	}
	if !validIdent(name) || qualified && !validIdent(table) {
		return clause.Column{}, false
	}
	return clause.Column{Table: table, Name: name}, true
}

func validIdent(s string) bool {
	if len(s) == 0 || len(s) > MaxIdentLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '_':
		case i > 0 && c >= '0' && c <= '9':
		default:
			return false
		}
	}
	return true
}
